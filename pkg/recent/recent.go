// Package recent owns the server-side "recently viewed" list: per viewer (a signed-in user, else an
// anonymous session) the most recent distinct products, newest first by event time.
//
// The list is a pure function of the set of views applied to it: Merge keeps, per product, the latest
// view time and returns the newest MaxItems. Merge is commutative, associative and idempotent, so
// applying a batch twice, or batches in any order, gives the same list; the store is written only
// when the list actually changes (a replayed batch costs reads, not writes).
package recent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// MaxItems is how many products a list keeps.
const MaxItems = 20

// Item is one viewed product.
type Item struct {
	ProductID string    `json:"productId"`
	ViewedAt  time.Time `json:"viewedAt"`
}

// List is the stored document (Cosmos container recentlyViewed, partition key /userId; the viewer
// key is both id and partition key, so every read and write is a point operation).
type List struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Items  []Item `json:"items"`
}

// ErrInvalidViewer marks a viewer id that cannot be a key.
var ErrInvalidViewer = errors.New("invalid viewer id")

// ValidateViewer checks a viewer id: 1 to 128 characters, none of / \ ? # (not allowed in Cosmos DB
// ids) and no control characters.
func ValidateViewer(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: must be 1 to 128 characters", ErrInvalidViewer)
	}
	if strings.ContainsAny(id, `/\?#`) || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: must not contain / \\ ? # or control characters", ErrInvalidViewer)
	}
	return nil
}

// less orders items newest first; ties (same instant) by product id so the order never depends on
// the order views arrived in.
func less(a, b Item) int {
	if c := b.ViewedAt.Compare(a.ViewedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ProductID, b.ProductID)
}

// Merge returns the newest max distinct products of cur and views, and whether that differs from cur.
// cur must be a list Merge produced (sorted, distinct); it is not modified.
func Merge(cur, views []Item, max int) ([]Item, bool) {
	out := make([]Item, 0, min(len(cur)+len(views), max+len(views)))
	out = append(out, cur...)
	for _, v := range views {
		found := false
		for i := range out {
			if out[i].ProductID == v.ProductID {
				if v.ViewedAt.After(out[i].ViewedAt) {
					out[i].ViewedAt = v.ViewedAt
				}
				found = true
				break
			}
		}
		if !found {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, less)
	if len(out) > max {
		out = out[:max]
	}
	return out, !slices.Equal(out, cur)
}

// Store is what the service needs of storage: the docstore collection of lists.
type Store = docstore.Collection[List]

// Service applies views to lists and serves them.
type Service struct {
	Store Store
	TTL   time.Duration // lists expire this long after their last change
	// Concurrency bounds parallel read-modify-writes per batch (1 for the embedded store; more hides
	// Cosmos DB round trips).
	Concurrency int
	// MaxAttempts bounds the optimistic-concurrency retries for one viewer.
	MaxAttempts int
}

// ApplyStats counts one Apply.
type ApplyStats struct {
	Viewers, Writes, Conflicts int
}

// Apply merges each viewer's views into their list: one read and at most one write per viewer,
// conditional on the ETag read (retried up to MaxAttempts on a concurrent change). All viewers are
// attempted; the first store error is returned (the caller fails the invocation for a retry, which
// is safe because Merge is idempotent).
func (s *Service) Apply(ctx context.Context, views map[string][]Item) (ApplyStats, error) {
	st := ApplyStats{Viewers: len(views)}
	workers := max(1, s.Concurrency)
	if workers == 1 || len(views) == 1 {
		var first error
		for viewer, vs := range views {
			w, c, err := s.applyOne(ctx, viewer, vs)
			st.Writes += w
			st.Conflicts += c
			if err != nil && first == nil {
				first = err
			}
		}
		return st, first
	}
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, workers)
	)
	for viewer, vs := range views {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w, c, err := s.applyOne(ctx, viewer, vs)
			mu.Lock()
			st.Writes += w
			st.Conflicts += c
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return st, first
}

func (s *Service) applyOne(ctx context.Context, viewer string, views []Item) (writes, conflicts int, err error) {
	attempts := max(1, s.MaxAttempts)
	for range attempts {
		cur, etag, err := s.Store.Get(ctx, viewer, viewer)
		exists := err == nil
		if err != nil && !errors.Is(err, docstore.ErrNotFound) {
			return writes, conflicts, fmt.Errorf("recent.Apply(%s): %w", viewer, err)
		}
		merged, changed := Merge(cur.Items, views, MaxItems)
		if !changed {
			return writes, conflicts, nil
		}
		opts := docstore.PutOptions{IfMatch: etag, TTL: s.TTL}
		if !exists {
			opts = docstore.PutOptions{IfNoneMatch: true, TTL: s.TTL}
		}
		_, err = s.Store.Put(ctx, viewer, viewer, List{ID: viewer, UserID: viewer, Items: merged}, opts)
		if err == nil {
			return writes + 1, conflicts, nil
		}
		if !errors.Is(err, docstore.ErrConflict) {
			return writes, conflicts, fmt.Errorf("recent.Apply(%s): %w", viewer, err)
		}
		conflicts++
	}
	return writes, conflicts, fmt.Errorf("recent.Apply(%s): still conflicting after %d attempts: %w", viewer, attempts, docstore.ErrConflict)
}

// Get returns the newest limit items of viewer's list (empty for an unknown viewer).
func (s *Service) Get(ctx context.Context, viewer string, limit int) ([]Item, error) {
	if err := ValidateViewer(viewer); err != nil {
		return nil, err
	}
	l, _, err := s.Store.Get(ctx, viewer, viewer)
	if errors.Is(err, docstore.ErrNotFound) {
		return []Item{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("recent.Get(%s): %w", viewer, err)
	}
	items := l.Items
	if len(items) > limit {
		items = items[:limit]
	}
	return items, nil
}
