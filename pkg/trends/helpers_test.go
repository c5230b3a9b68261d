package trends_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/trends"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// counted wraps a collection, counts its operations and can be made to fail.
type counted[T any] struct {
	docstore.Collection[T]
	mu                      sync.Mutex
	gets, puts, lists, docs int
	// failPut, when set, decides per write whether it fails like an unavailable store.
	failPut func(pk, id string) bool
}

var errDown = errors.New("503 service unavailable")

func (c *counted[T]) Get(ctx context.Context, pk, id string) (T, docstore.ETag, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Collection.Get(ctx, pk, id)
}

func (c *counted[T]) Put(ctx context.Context, pk, id string, v T, o docstore.PutOptions) (docstore.ETag, error) {
	c.mu.Lock()
	fail := c.failPut != nil && c.failPut(pk, id)
	if !fail {
		c.puts++
	}
	c.mu.Unlock()
	if fail {
		return "", errDown
	}
	return c.Collection.Put(ctx, pk, id, v, o)
}

func (c *counted[T]) List(ctx context.Context, pk string, fn func(string, T, docstore.ETag) error) error {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.Collection.List(ctx, pk, func(id string, v T, e docstore.ETag) error {
		c.mu.Lock()
		c.docs++
		c.mu.Unlock()
		return fn(id, v, e)
	})
}

func (c *counted[T]) reset() {
	c.mu.Lock()
	c.gets, c.puts, c.lists, c.docs = 0, 0, 0, 0
	c.mu.Unlock()
}

type fixture struct {
	svc   *trends.Service
	clock *clock
	aggs  *counted[trends.Aggregate]
	prog  *counted[trends.Progress]
	tots  *counted[trends.Totals]
	snaps *counted[trends.Snapshot]
	state *counted[trends.MaterializerState]
	db    *embedded.DB
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{clock: &clock{now: t0}, db: db}
	f.aggs = &counted[trends.Aggregate]{Collection: must(embedded.NewCollection[trends.Aggregate](db, "trendAggregates"))}
	f.prog = &counted[trends.Progress]{Collection: must(embedded.NewCollection[trends.Progress](db, "trendAggregates.progress"))}
	f.tots = &counted[trends.Totals]{Collection: must(embedded.NewCollection[trends.Totals](db, "trendSnapshots.totals"))}
	f.snaps = &counted[trends.Snapshot]{Collection: must(embedded.NewCollection[trends.Snapshot](db, "trendSnapshots"))}
	f.state = &counted[trends.MaterializerState]{Collection: must(embedded.NewCollection[trends.MaterializerState](db, "trendSnapshots.state"))}
	f.svc = &trends.Service{
		Stores: trends.Stores{Aggregates: f.aggs, Progress: f.prog, Totals: f.tots, Snapshots: f.snaps, State: f.state},
		Now:    f.clock.Now,
	}
	return f
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// views builds views with consecutive sequence numbers from first, each at event time t0+sec and
// enqueued one second later.
func views(first int64, specs ...viewSpec) []trends.View {
	out := make([]trends.View, len(specs))
	for i, s := range specs {
		at := t0.Add(time.Duration(s.sec) * time.Second)
		enq := at.Add(time.Second)
		if s.enqueuedAfter != 0 {
			enq = at.Add(s.enqueuedAfter)
		}
		out[i] = trends.View{Seq: first + int64(i), ProductID: s.product, Category: s.category, Time: at, Enqueued: enq}
	}
	return out
}

type viewSpec struct {
	product, category string
	sec               int
	enqueuedAfter     time.Duration
}

func v(product, category string, sec int) viewSpec {
	return viewSpec{product: product, category: category, sec: sec}
}

// batchOf makes a batch covering its views' sequence numbers.
func batchOf(partition string, vs []trends.View) trends.Batch {
	b := trends.Batch{Partition: partition, Views: vs}
	seqs := make([]int64, len(vs))
	for i, x := range vs {
		seqs[i] = x.Seq
		if x.Enqueued.After(b.Enqueued) {
			b.Enqueued = x.Enqueued
		}
	}
	b.Seqs = trends.RangesOf(seqs...)
	return b
}

// counts reads every partition's aggregate of minute m and returns product -> views, summed.
func (f *fixture) counts(t testing.TB, minutes ...time.Time) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, m := range minutes {
		err := f.aggs.Collection.List(context.Background(), "agg|"+m.Format("200601021504"), func(id string, a trends.Aggregate, _ docstore.ETag) error {
			for p, n := range a.Products {
				out[p] += n
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func (f *fixture) apply(t testing.TB, b trends.Batch) trends.ApplyStats {
	t.Helper()
	st, err := f.svc.Apply(context.Background(), b)
	if err != nil {
		t.Fatalf("Apply(%s): %v", b.Partition, err)
	}
	return st
}

func (f *fixture) progress(t testing.TB, partition string) trends.Progress {
	t.Helper()
	p, _, err := f.prog.Collection.Get(context.Background(), "progress", "p"+partition)
	if err != nil {
		t.Fatalf("progress %s: %v", partition, err)
	}
	return p
}

func minute(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

var _ = fmt.Sprint
