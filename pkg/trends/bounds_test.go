package trends_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/trends"
)

// A poison event replayed after a fix is counted once, however often it is replayed, although its
// sequence number was decided (and is inside the aggregate's applied runs) when it was dead-lettered.
func TestApplyReplayedPoisonCountsOnce(t *testing.T) {
	f := newFixture(t)
	vs := views(0, v("p1", "tools", 5), v("p2", "tools", 6), v("p3", "tools", 8))
	// Event 1 (p2) was poison when it arrived: decided (in Seqs) but not a view.
	b := batchOf("0", []trends.View{vs[0], vs[2]})
	b.Seqs = trends.Ranges{{First: 0, Last: 2}}
	f.apply(t, b)
	if got := f.progress(t, "0").Applied; !got.Equal(trends.Ranges{{First: 0, Last: 2}}) {
		t.Fatalf("progress applied %v, want the poison event decided: [0,2]", got)
	}
	// The normal path cannot count it any more...
	st := f.apply(t, batchOf("0", vs[1:2]))
	if st.Views != 0 {
		t.Fatalf("Apply of the fixed event counted %d views, want 0 (it is decided)", st.Views)
	}
	// ...the replay path counts it exactly once.
	for i := range 3 {
		st, err := f.svc.ApplyReplayedPoison(context.Background(), batchOf("0", vs[1:2]))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[i == 0]; st.Views != want {
			t.Fatalf("replay %d counted %d views, want %d", i+1, st.Views, want)
		}
	}
	if diff := cmp.Diff(map[string]int64{"p1": 1, "p2": 1, "p3": 1}, f.counts(t, minute(0))); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if p := f.progress(t, "0"); p.Views != 3 {
		t.Errorf("progress views metric %d, want 3", p.Views)
	}
	// The materializer sums the replayed view's own document with the partition's aggregate.
	f.clock.Set(t0.Add(30 * time.Minute))
	if _, err := f.svc.Materialize(context.Background()); err != nil {
		t.Fatal(err)
	}
	tot, _, err := f.tots.Collection.Get(context.Background(), "min|"+t0.Format("2006010215"), t0.Format("200601021504"))
	if err != nil {
		t.Fatal(err)
	}
	if tot.Views != 3 || tot.Products["p2"] != 1 {
		t.Errorf("minute totals %d views, p2 %d; want 3 and 1", tot.Views, tot.Products["p2"])
	}
}

// The largest progress document the bounds allow stays under 4 KB: MaxProgressRanges runs, a mark
// every MarkInterval over the reopen horizon, MaxReopened runs of minutes, counters and sequence
// numbers with 12 digits (a partition at 1,000 events a second for 30 years), the longest partition id.
func TestProgressWorstCaseSize(t *testing.T) {
	const big = int64(999_999_999_999)
	p := trends.Progress{ID: "p31", PK: "progress", Partition: "31", MaxSeq: big, Watermark: t0, UpdatedAt: t0.Add(time.Nanosecond),
		Views: big, Late: big, Expired: big, ReopenRev: big}
	for i := range int64(trends.MaxProgressRanges) {
		p.Applied = append(p.Applied, trends.Range{First: big - 100*i - 50, Last: big - 100*i})
	}
	for i := range int(trends.DefaultReopenHorizon/trends.MarkInterval) + 1 {
		p.Marks = append(p.Marks, trends.Mark{Seq: big, Enqueued: t0.Add(time.Duration(i) * trends.MarkInterval)})
	}
	for i := range trends.MaxReopened {
		p.Reopened = append(p.Reopened, trends.Reopen{Minute: t0.Add(time.Duration(i) * time.Hour), Through: t0.Add(time.Duration(i)*time.Hour + 59*time.Minute), Rev: big})
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("worst-case progress document: %d bytes", len(b))
	if len(b) > 4096 {
		t.Errorf("worst-case progress document is %d bytes, want at most 4096", len(b))
	}
}

// Coarsen keeps the lowest and highest runs and returns a subset.
func TestRangesCoarsen(t *testing.T) {
	rs := trends.Ranges{{0, 9}, {11, 11}, {13, 20}, {22, 22}, {30, 40}}
	got := rs.Coarsen(3)
	if want := (trends.Ranges{{0, 9}, {13, 20}, {30, 40}}); !got.Equal(want) {
		t.Fatalf("Coarsen(3) = %v, want %v", got, want)
	}
	for s := int64(0); s <= 40; s++ {
		if got.Contains(s) && !rs.Contains(s) {
			t.Fatalf("Coarsen added %d", s)
		}
	}
	if !rs.Within(10, 25).Equal(trends.Ranges{{11, 11}, {13, 20}, {22, 22}}) {
		t.Fatalf("Within(10, 25) = %v", rs.Within(10, 25))
	}
}

var boundsEvents = flag.Int("bounds.events", 10_000_000, "events in TestStateStaysBounded")

// Bounded state (docs/trends.md): a day of Contoso traffic (10 million events over 16 partitions,
// 0.5% poison, 1% of other types, late events, parked batches replayed later, some parked batches
// never replayed, poison replayed after a fix) leaves every progress document under 4 KB and every
// aggregate with a handful of applied runs, and every valid view counted exactly once.
func TestStateStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 10 million events")
	}
	const (
		partitions  = 16
		perBatch    = 256 // the host's maxEventBatchSize: a partition is delivered every ~35 s at this rate
		progressMax = 4096
		aggRunsMax  = 8
	)
	rate := 10_000_000.0 / 86400 / partitions // events per second per partition
	clk := &clock{now: t0}
	stores := newSizedStores()
	svc := &trends.Service{Stores: stores.Stores(), Now: clk.Now}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	zipf := rand.NewZipf(rng, 1.1, 1, 9999)
	type pending struct {
		at    time.Time
		batch trends.Batch
		kind  string // "parked" or "poison"
		enq   map[int64]time.Time
	}
	var replays []pending
	replay := func(r pending) {
		if r.kind == "parked" { // every event of the batch is replayed, as ReplayDeadLetters does
			byseq := map[int64]trends.View{}
			for _, v := range r.batch.Views {
				byseq[v.Seq] = v
			}
			for s := r.batch.Seqs.Min(); s <= r.batch.Seqs.Max(); s++ {
				one := trends.Batch{Partition: r.batch.Partition, Seqs: trends.RangesOf(s), Enqueued: r.enq[s]}
				if v, ok := byseq[s]; ok {
					one.Views = []trends.View{v}
				}
				if _, err := svc.Apply(ctx, one); err != nil {
					t.Fatal(err)
				}
			}
			return
		}
		for _, v := range r.batch.Views {
			one := trends.Batch{Partition: r.batch.Partition, Views: []trends.View{v}, Seqs: trends.RangesOf(v.Seq), Enqueued: v.Enqueued}
			var err error
			if r.kind == "poison" {
				_, err = svc.ApplyReplayedPoison(ctx, one)
			} else {
				_, err = svc.Apply(ctx, one)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	truth := map[string]int64{} // "minute|product" -> views that must be counted
	seq := make([]int64, partitions)
	next := make([]time.Time, partitions)
	total, parkedBatches, lostBatches := 0, 0, 0
	var lastEnq time.Time
	for total < *boundsEvents {
		// The partition whose next batch is due first.
		p := 0
		for i := range partitions {
			if next[i].Before(next[p]) {
				p = i
			}
		}
		part := fmt.Sprint(p)
		span := time.Duration(float64(perBatch) / rate * float64(time.Second))
		start := t0.Add(time.Duration(total/partitions) * time.Duration(float64(time.Second)/rate))
		if next[p].After(start) {
			start = next[p]
		}
		next[p] = start.Add(span)
		b := trends.Batch{Partition: part}
		var poison []trends.View
		var counted []string
		first := seq[p]
		enqs := map[int64]time.Time{}
		for i := range perBatch {
			s := seq[p]
			seq[p]++
			enq := start.Add(time.Duration(i) * span / perBatch)
			enqs[s] = enq
			b.Enqueued = enq
			r := rng.Float64()
			switch {
			case r < 0.005: // poison: decided, not a view; some are fixed and replayed later
				poison = append(poison, trends.View{Seq: s, ProductID: fmt.Sprintf("p%d", zipf.Uint64()), Time: enq, Enqueued: enq})
			case r < 0.015: // another event type: decided, not a view
			default:
				at := enq.Add(-time.Duration(rng.IntN(3000)) * time.Millisecond)
				if rng.Float64() < 0.01 {
					at = enq.Add(-time.Duration(rng.IntN(15*60)) * time.Second) // late, some beyond the lateness
				}
				v := trends.View{Seq: s, ProductID: fmt.Sprintf("p%d", zipf.Uint64()), Category: "c", Time: at, Enqueued: enq}
				b.Views = append(b.Views, v)
				if enq.Sub(at) <= trends.DefaultAllowedLateness {
					counted = append(counted, trends.Minute(at).Format("200601021504")+"|"+v.ProductID)
				}
			}
		}
		b.Seqs = trends.Ranges{{First: first, Last: seq[p] - 1}}
		total += perBatch
		lastEnq = b.Enqueued
		clk.Set(b.Enqueued.Add(2 * time.Second))
		// Run the replays that are due (ReplayDeadLetters every 15 minutes).
		for len(replays) > 0 && !replays[0].at.After(clk.Now()) {
			replay(replays[0])
			replays = replays[1:]
		}
		x := rng.IntN(400)
		switch {
		case x == 0: // parked on the last retry, replayed 15 minutes later
			parkedBatches++
			replays = append(replays, pending{at: clk.Now().Add(15 * time.Minute), batch: b, kind: "parked", enq: enqs})
			for _, c := range counted {
				truth[c]++
			}
		case x == 1: // parked, and its records are never replayed (lost to an operator's purge)
			lostBatches++
		default:
			if _, err := svc.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
			for _, c := range counted {
				truth[c]++
			}
		}
		if len(poison) > 0 && rng.IntN(4) == 0 && x > 1 { // a fix lets some poison events count after all
			replays = append(replays, pending{at: clk.Now().Add(15 * time.Minute), batch: trends.Batch{Partition: part, Views: poison}, kind: "poison"})
			for _, v := range poison {
				truth[trends.Minute(v.Time).Format("200601021504")+"|"+v.ProductID]++
			}
		}
	}
	for _, r := range replays { // the last replays, after the traffic
		clk.Set(r.at)
		replay(r)
	}
	t.Logf("%d events, %d partitions, %d parked batches replayed, %d never replayed, simulated %s",
		total, partitions, parkedBatches, lostBatches, lastEnq.Sub(t0).Round(time.Minute))
	stores.mu.Lock()
	defer stores.mu.Unlock()
	t.Logf("largest progress document %d bytes; largest aggregate %d bytes with at most %d applied runs",
		stores.maxProgress, stores.maxAggregate, stores.maxAggRuns)
	if stores.maxProgress > progressMax {
		t.Errorf("largest progress document %d bytes, want at most %d", stores.maxProgress, progressMax)
	}
	if stores.maxAggRuns > aggRunsMax {
		t.Errorf("an aggregate kept %d applied runs, want at most %d", stores.maxAggRuns, aggRunsMax)
	}
	got := map[string]int64{}
	for _, a := range stores.aggs.docs {
		for prod, n := range a.Products {
			got[a.Minute.Format("200601021504")+"|"+prod] += n
		}
	}
	lost, double := int64(0), int64(0)
	for k, n := range truth {
		switch g := got[k]; {
		case g < n:
			lost += n - g
		case g > n:
			double += g - n
		}
	}
	for k, g := range got {
		if _, ok := truth[k]; !ok {
			double += g
		}
	}
	if lost != 0 || double != 0 {
		t.Errorf("views lost %d, double counted %d", lost, double)
	}
}

// sizedStores is an in-memory docstore that records the largest document written per kind: the
// bounds test writes 10 million events' worth of documents, and the embedded store's log would
// measure the disk, not the documents.
type sizedStores struct {
	mu                                    sync.Mutex
	aggs                                  *memColl[trends.Aggregate]
	prog                                  *memColl[trends.Progress]
	maxProgress, maxAggregate, maxAggRuns int
	maxAggProducts                        int
}

func newSizedStores() *sizedStores {
	s := &sizedStores{}
	s.aggs = &memColl[trends.Aggregate]{docs: map[[2]string]trends.Aggregate{}, etags: map[[2]string]int{}, measure: func(a trends.Aggregate) {
		s.mu.Lock()
		// An aggregate's size is its product map's plus its runs': marshal only the candidates.
		if a.Applied.Len() > s.maxAggRuns || len(a.Products) >= s.maxAggProducts {
			b, _ := json.Marshal(a)
			s.maxAggregate = max(s.maxAggregate, len(b))
		}
		s.maxAggRuns, s.maxAggProducts = max(s.maxAggRuns, a.Applied.Len()), max(s.maxAggProducts, len(a.Products))
		s.mu.Unlock()
	}}
	s.prog = &memColl[trends.Progress]{docs: map[[2]string]trends.Progress{}, etags: map[[2]string]int{}, measure: func(p trends.Progress) {
		b, _ := json.Marshal(p)
		s.mu.Lock()
		s.maxProgress = max(s.maxProgress, len(b))
		s.mu.Unlock()
	}}
	return s
}

func (s *sizedStores) Stores() trends.Stores {
	return trends.Stores{Aggregates: s.aggs, Progress: s.prog}
}

type memColl[T any] struct {
	mu      sync.Mutex
	docs    map[[2]string]T
	etags   map[[2]string]int
	measure func(T)
}

func (c *memColl[T]) Get(_ context.Context, pk, id string) (T, docstore.ETag, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.docs[[2]string{pk, id}]
	if !ok {
		return v, "", docstore.ErrNotFound
	}
	return v, docstore.ETag(fmt.Sprint(c.etags[[2]string{pk, id}])), nil
}

func (c *memColl[T]) Put(_ context.Context, pk, id string, v T, o docstore.PutOptions) (docstore.ETag, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{pk, id}
	_, exists := c.docs[k]
	if (o.IfNoneMatch && exists) || (o.IfMatch != "" && (!exists || string(o.IfMatch) != fmt.Sprint(c.etags[k]))) {
		return "", docstore.ErrConflict
	}
	c.measure(v)
	c.docs[k] = v
	c.etags[k]++
	return docstore.ETag(fmt.Sprint(c.etags[k])), nil
}

func (c *memColl[T]) Delete(_ context.Context, pk, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.docs, [2]string{pk, id})
	return nil
}

func (c *memColl[T]) List(_ context.Context, pk string, fn func(string, T, docstore.ETag) error) error {
	c.mu.Lock()
	var ids []string
	for k := range c.docs {
		if k[0] == pk {
			ids = append(ids, k[1])
		}
	}
	c.mu.Unlock()
	for _, id := range ids {
		v, e, err := c.Get(context.Background(), pk, id)
		if err != nil {
			continue
		}
		if err := fn(id, v, e); err != nil {
			return err
		}
	}
	return nil
}

// Replays into many old minutes keep Progress.Reopened within MaxReopened, and the materializer still
// merges every one of those minutes again (merging runs never drops a minute).
func TestReopenedStaysBoundedAndComplete(t *testing.T) {
	f := newFixture(t)
	// 40 minutes, 7 apart, each with one view; the batch carrying them fails and is parked.
	var parked []trends.View
	for i := range 40 {
		parked = append(parked, views(int64(i), v(fmt.Sprintf("p%d", i), "", i*7*60))...)
	}
	f.clock.Set(t0.Add(5 * time.Hour))
	later := views(100, v("x", "", 5*3600))
	f.apply(t, batchOf("0", later))
	if _, err := f.svc.Materialize(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, pv := range parked { // ReplayDeadLetters, one record at a time
		f.apply(t, batchOf("0", []trends.View{pv}))
	}
	p := f.progress(t, "0")
	if len(p.Reopened) > trends.MaxReopened {
		t.Fatalf("%d reopened runs, want at most %d", len(p.Reopened), trends.MaxReopened)
	}
	if _, err := f.svc.Materialize(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, pv := range parked {
		m := trends.Minute(pv.Time)
		tot, _, err := f.tots.Collection.Get(context.Background(), "min|"+m.Format("2006010215"), m.Format("200601021504"))
		if err != nil || tot.Products[pv.ProductID] != 1 {
			t.Fatalf("minute %d (%s) totals %+v, %v: want the replayed view merged", i, m, tot.Products, err)
		}
	}
}

// A hole left by a parked batch that is never replayed is filled once it is older than the reopen
// horizon: nothing in it could count in a minute any more.
func TestProgressFillsExpiredHoles(t *testing.T) {
	f := newFixture(t)
	f.apply(t, batchOf("0", views(0, v("a", "", 0))))
	// Events 1..9 are parked and never replayed.
	f.clock.Set(t0.Add(time.Minute))
	f.apply(t, batchOf("0", views(10, v("b", "", 60))))
	if got := f.progress(t, "0").Applied; got.Len() != 2 {
		t.Fatalf("applied %v, want a hole", got)
	}
	for h := 1; h <= 27; h++ { // traffic goes on, one batch an hour
		f.clock.Set(t0.Add(time.Duration(h) * time.Hour))
		f.apply(t, batchOf("0", views(int64(10+h), v("c", "", h*3600))))
	}
	p := f.progress(t, "0")
	if !p.Applied.Equal(trends.Ranges{{First: 0, Last: 37}}) {
		t.Fatalf("applied %v, want the expired hole filled: [0,37]", p.Applied)
	}
	if len(p.Marks) > int(trends.DefaultReopenHorizon/trends.MarkInterval)+1 {
		t.Fatalf("%d marks", len(p.Marks))
	}
}
