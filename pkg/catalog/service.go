package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"golang.org/x/sync/errgroup"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// Publisher publishes product events to the ProductEventsTopic. Before the last attempt a failure is
// returned (the invocation fails and the host retries); on the last attempt the publisher parks the
// events in its outbox for the relay timer and returns nil, or returns an error only when even
// that failed. publish.Publisher is the implementation.
type Publisher interface {
	Publish(ctx context.Context, events []event.Event, lastAttempt bool) error
}

// Limits bound one publish request.
type Limits struct {
	MaxEvents int // events per request
	MaxBytes  int // estimated encoded size of the request body (a JSON array of structured events)
}

// EventGridLimits are those of an Event Grid topic (1 MB per request, 5,000 events per request),
// with a margin on the size for the estimate.
var EventGridLimits = Limits{MaxEvents: 5000, MaxBytes: 1_000_000}

// Service turns batches of product documents into published events and keeps the published state.
type Service struct {
	State     StateStore
	Publisher Publisher
	// Limits bound each publish call (EventGridLimits when zero).
	Limits Limits
	// Concurrency bounds parallel state reads and writes per batch (1 for the embedded store; more
	// hides Cosmos DB round trips).
	Concurrency int
	// MaxAttempts bounds the optimistic-concurrency retries of one state write (3 when zero).
	MaxAttempts int
	Now         func() time.Time
}

// Stats counts one Apply.
type Stats struct {
	Documents int
	Products  int
	Events    int
	Requests  int // publish calls
	Unchanged int // versions with no visible change (internal fields, stock not crossing zero)
	Stale     int // versions already published, or older than the one last published
	Writes    int // state writes
	Conflicts int // state writes that met a concurrent change
}

type product struct {
	id     string
	docs   []*Document
	last   *State
	etag   docstore.ETag
	next   *State // state to write after publishing; nil when nothing was published
	events []event.Event
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) workers() int { return max(1, s.Concurrency) }

// Apply publishes the events of docs (a change-feed batch, valid documents only) and records the
// new published states. Per product, versions are applied in the order given (the change feed's
// order for a partition key), and all events of one product go in one publish call, in order.
//
// Order of work, so that nothing is lost and nothing is published twice under different ids:
// read the states, compute the events, publish them, then write the states. A failure before the
// states are written leaves them as they were, so a retry computes the same events with the same
// ids (a partner may receive an event twice and deduplicates it by id). On the last attempt the
// Publisher parks what it cannot send; an error returned then (state store or outbox down) is for
// the caller to park the documents.
func (s *Service) Apply(ctx context.Context, docs []Document, lastAttempt bool) (Stats, error) {
	st := Stats{Documents: len(docs)}
	if len(docs) == 0 {
		return st, nil
	}
	if s.State == nil || s.Publisher == nil {
		return st, errors.New("catalog.Apply: service has no state store or publisher")
	}
	products := groupByProduct(docs)
	st.Products = len(products)
	if err := s.load(ctx, products); err != nil {
		return st, err
	}
	now := s.now()
	for _, p := range products {
		cur := p.last
		for _, d := range p.docs {
			if cur != nil && d.Version.NotNewerThan(cur.Version) {
				st.Stale++
				continue
			}
			c := Diff(cur, d)
			if !c.Visible() {
				st.Unchanged++
				continue
			}
			evs, err := Events(&c, d.Version)
			if err != nil {
				return st, err
			}
			p.events = append(p.events, evs...)
			cur = newState(c.Product, c.Deleted, d.Version, false, now)
			p.next = cur
		}
		st.Events += len(p.events)
	}
	for _, chunk := range s.chunks(products) {
		if err := s.Publisher.Publish(ctx, chunk, lastAttempt); err != nil {
			return st, fmt.Errorf("catalog.Apply: publish %d events: %w", len(chunk), err)
		}
		st.Requests++
	}
	w, c, err := s.save(ctx, products)
	st.Writes, st.Conflicts = w, c
	return st, err
}

// groupByProduct groups docs by product id, products in order of first appearance.
func groupByProduct(docs []Document) []*product {
	byID := make(map[string]*product, len(docs))
	out := make([]*product, 0, len(docs))
	for i := range docs {
		d := &docs[i]
		p := byID[d.Product.ID]
		if p == nil {
			p = &product{id: d.Product.ID}
			byID[p.id] = p
			out = append(out, p)
		}
		p.docs = append(p.docs, d)
	}
	return out
}

// load reads the published state of every product, Concurrency at a time.
func (s *Service) load(ctx context.Context, products []*product) error {
	var g errgroup.Group
	g.SetLimit(s.workers())
	for _, p := range products {
		g.Go(func() error {
			st, etag, err := s.State.Get(ctx, p.id, p.id)
			switch {
			case errors.Is(err, docstore.ErrNotFound):
				return nil
			case err != nil:
				return fmt.Errorf("catalog.Apply(%s): read published state: %w", p.id, err)
			}
			p.last, p.etag = &st, etag
			return nil
		})
	}
	return g.Wait()
}

// chunks splits the events into publish calls within Limits, keeping each product's events
// together and in order (a product whose events alone exceed the limits is split, still in order,
// since the calls are made one after another).
func (s *Service) chunks(products []*product) [][]event.Event {
	lim := s.Limits
	if lim.MaxEvents <= 0 {
		lim.MaxEvents = EventGridLimits.MaxEvents
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = EventGridLimits.MaxBytes
	}
	var out [][]event.Event
	var cur []event.Event
	size := 2 // the array's brackets
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur, size = nil, 2
		}
	}
	for _, p := range products {
		if len(p.events) == 0 {
			continue
		}
		group := 0
		for i := range p.events {
			group += EstimateSize(&p.events[i])
		}
		if len(cur)+len(p.events) > lim.MaxEvents || size+group > lim.MaxBytes {
			flush()
		}
		for i := range p.events {
			n := EstimateSize(&p.events[i])
			if len(cur) > 0 && (len(cur)+1 > lim.MaxEvents || size+n > lim.MaxBytes) {
				flush()
			}
			cur = append(cur, p.events[i])
			size += n
		}
	}
	flush()
	return out
}

// EstimateSize bounds the size of e as one element of a structured JSON batch: the encoded data plus
// every attribute, doubled for escaping, plus the attribute names and punctuation.
func EstimateSize(e *event.Event) int {
	attrs := len(e.ID()) + len(e.Source()) + len(e.Type()) + len(e.Subject()) + len(e.DataSchema()) +
		len(e.DataContentType()) + len(e.SpecVersion())
	return len(e.DataEncoded) + 2*attrs + 160
}

// save writes the new states, Concurrency at a time. Every write is attempted; the first error is
// returned (the states written are correct: a retry finds them and skips those versions).
func (s *Service) save(ctx context.Context, products []*product) (writes, conflicts int, _ error) {
	var (
		g     errgroup.Group
		mu    sync.Mutex
		first error
	)
	g.SetLimit(s.workers())
	for _, p := range products {
		if p.next == nil {
			continue
		}
		g.Go(func() error {
			c, err := s.put(ctx, p.next, p.etag, p.last != nil)
			mu.Lock()
			defer mu.Unlock()
			conflicts += c
			if err != nil {
				if first == nil {
					first = err
				}
				return nil
			}
			writes++
			return nil
		})
	}
	_ = g.Wait()
	return writes, conflicts, first
}

// put writes next conditionally on the version read. On a conflict (another instance, or a replay,
// wrote the product's state meanwhile) it re-reads: a stored state at least as new as next is kept;
// otherwise next is written over it.
func (s *Service) put(ctx context.Context, next *State, etag docstore.ETag, exists bool) (conflicts int, _ error) {
	attempts := s.MaxAttempts
	if attempts <= 0 {
		attempts = 3
	}
	for range attempts {
		opts := docstore.PutOptions{IfMatch: etag}
		if !exists {
			opts = docstore.PutOptions{IfNoneMatch: true}
		}
		_, err := s.State.Put(ctx, next.ProductID, next.ID, *next, opts)
		if !errors.Is(err, docstore.ErrConflict) {
			if err != nil {
				return conflicts, fmt.Errorf("catalog.Apply(%s): write published state: %w", next.ID, err)
			}
			return conflicts, nil
		}
		conflicts++
		stored, e, err := s.State.Get(ctx, next.ProductID, next.ID)
		switch {
		case errors.Is(err, docstore.ErrNotFound):
			exists, etag = false, ""
			continue
		case err != nil:
			return conflicts, fmt.Errorf("catalog.Apply(%s): re-read published state: %w", next.ID, err)
		}
		if next.Version.NotNewerThan(stored.Version) {
			return conflicts, nil
		}
		exists, etag = true, e
	}
	return conflicts, fmt.Errorf("catalog.Apply(%s): published state changed %d times concurrently: %w", next.ID, attempts, docstore.ErrConflict)
}

// SeedStats counts one Seed.
type SeedStats struct {
	Documents int
	Recorded  int // states written
	Existing  int // products that already had a published state (left as they are)
	Deleted   int // soft-deleted documents (nothing to record: a later restore publishes created)
}

// Seed records the public state of existing products without publishing anything, so that a first
// deployment over an existing catalog does not announce every product as created: a product's first
// change after seeding is published as updated with the right previous values. A product that
// already has a published state is left alone (its state is newer or equal: the change feed wrote
// it), so seeding can be re-run safely.
func (s *Service) Seed(ctx context.Context, docs []Document) (SeedStats, error) {
	st := SeedStats{Documents: len(docs)}
	if s.State == nil {
		return st, errors.New("catalog.Seed: service has no state store")
	}
	var (
		g     errgroup.Group
		mu    sync.Mutex
		first error
	)
	g.SetLimit(s.workers())
	now := s.now()
	for i := range docs {
		d := &docs[i]
		if d.Deleted {
			st.Deleted++
			continue
		}
		g.Go(func() error {
			next := newState(d.Product, false, d.Version, true, now)
			_, err := s.State.Put(ctx, next.ProductID, next.ID, *next, docstore.PutOptions{IfNoneMatch: true})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				st.Recorded++
			case errors.Is(err, docstore.ErrConflict):
				st.Existing++
			case first == nil:
				first = fmt.Errorf("catalog.Seed(%s): %w", d.Product.ID, err)
			}
			return nil
		})
	}
	_ = g.Wait()
	return st, first
}
