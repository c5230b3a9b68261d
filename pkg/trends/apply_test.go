package trends_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/trends"
)

func TestRanges(t *testing.T) {
	tests := []struct {
		name string
		a, b trends.Ranges
		want trends.Ranges
	}{
		{"empty", nil, nil, trends.Ranges{}},
		{"adjacent runs coalesce", trends.Ranges{{0, 9}}, trends.Ranges{{10, 19}}, trends.Ranges{{0, 19}}},
		{"gap stays", trends.Ranges{{0, 9}}, trends.Ranges{{20, 29}}, trends.Ranges{{0, 9}, {20, 29}}},
		{"gap filled", trends.Ranges{{0, 9}, {20, 29}}, trends.Ranges{{10, 19}}, trends.Ranges{{0, 29}}},
		{"overlap", trends.Ranges{{0, 9}}, trends.Ranges{{5, 14}}, trends.Ranges{{0, 14}}},
		{"contained", trends.Ranges{{0, 99}}, trends.Ranges{{5, 14}}, trends.Ranges{{0, 99}}},
		{"unsorted input", trends.Ranges{{30, 31}}, trends.Ranges{{0, 1}, {10, 11}}, trends.Ranges{{0, 1}, {10, 11}, {30, 31}}},
		{"invalid runs dropped", trends.Ranges{{5, 4}, {-3, -1}}, trends.Ranges{{1, 1}}, trends.Ranges{{1, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.a.Union(tt.b)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Union (-want +got):\n%s", diff)
			}
		})
	}
	rs := trends.Ranges{{0, 9}, {20, 29}}
	for seq, want := range map[int64]bool{-1: false, 0: true, 9: true, 10: false, 19: false, 20: true, 29: true, 30: false} {
		if got := rs.Contains(seq); got != want {
			t.Errorf("Contains(%d) = %v, want %v", seq, got, want)
		}
	}
	if got := trends.RangesOf(3, 1, 2, -1, 7); !got.Equal(trends.Ranges{{1, 3}, {7, 7}}) {
		t.Errorf("RangesOf = %v", got)
	}
}

// Applying the same batch again (the host's retry, a re-delivery after a lost checkpoint) changes
// nothing and writes nothing.
func TestApplyReplayChangesNothing(t *testing.T) {
	f := newFixture(t)
	b := batchOf("0", views(100, v("p1", "tools", 5), v("p2", "tools", 10), v("p1", "tools", 70)))
	st := f.apply(t, b)
	if st.Views != 3 || st.Minutes != 2 || st.Writes != 3 {
		t.Fatalf("first apply: %+v, want 3 views in 2 minutes with 3 writes (2 aggregates + progress)", st)
	}
	before := f.counts(t, minute(0), minute(1))
	prog := f.progress(t, "0")
	f.aggs.reset()
	f.prog.reset()
	st = f.apply(t, b)
	if st.Views != 0 || st.Duplicates != 3 || st.Writes != 0 {
		t.Fatalf("replay: %+v, want 0 views, 3 duplicates, 0 writes", st)
	}
	if f.aggs.puts+f.prog.puts != 0 {
		t.Errorf("replay wrote %d documents", f.aggs.puts+f.prog.puts)
	}
	if diff := cmp.Diff(before, f.counts(t, minute(0), minute(1))); diff != "" {
		t.Errorf("counts changed by the replay (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(prog, f.progress(t, "0")); diff != "" {
		t.Errorf("progress changed by the replay:\n%s", diff)
	}
	// A re-delivery that overlaps (the host re-batches after a restart) counts only what is new.
	b2 := batchOf("0", views(101, v("p2", "tools", 10), v("p1", "tools", 70), v("p3", "garden", 75)))
	st = f.apply(t, b2)
	if st.Views != 1 || st.Duplicates != 2 {
		t.Fatalf("overlapping re-delivery: %+v, want 1 new view and 2 duplicates", st)
	}
	want := map[string]int64{"p1": 2, "p2": 1, "p3": 1}
	if diff := cmp.Diff(want, f.counts(t, minute(0), minute(1))); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// Batches of different partitions add up, and any order of any batches gives the same counts.
func TestApplyAnyOrderSameCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	products := []string{"p1", "p2", "p3", "p4", "p5"}
	var batches []trends.Batch
	want := map[string]int64{}
	for _, part := range []string{"0", "1", "2"} {
		seq := int64(1000)
		for range 6 {
			var specs []viewSpec
			for range 1 + rng.IntN(20) {
				p := products[rng.IntN(len(products))]
				specs = append(specs, v(p, "c-"+p, rng.IntN(180)))
				want[p]++
			}
			b := batchOf(part, views(seq, specs...))
			seq += int64(len(specs))
			batches = append(batches, b)
		}
	}
	mins := []time.Time{minute(0), minute(1), minute(2)}
	var reference map[string]int64
	for trial := range 5 {
		f := newFixture(t)
		order := rng.Perm(len(batches))
		for _, i := range order {
			f.apply(t, batches[i])
			if trial%2 == 1 { // and every other trial replays each batch at once
				f.apply(t, batches[i])
			}
		}
		got := f.counts(t, mins...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("trial %d (order %v): counts (-want +got):\n%s", trial, order, diff)
		}
		if reference == nil {
			reference = got
		}
		// The partitions' progress is order-independent too.
		for _, part := range []string{"0", "1", "2"} {
			p := f.progress(t, part)
			if len(p.Applied) != 1 || p.Views == 0 {
				t.Errorf("trial %d partition %s: progress %+v, want one contiguous run", trial, part, p.Applied)
			}
		}
	}
}

// A batch that fails half way (one minute written, the next not) is retried by the host; the retry
// completes it without counting the written minute twice, and the progress moves only at the end.
func TestApplyPartialFailureRetry(t *testing.T) {
	f := newFixture(t)
	b := batchOf("3", views(0, v("p1", "", 10), v("p2", "", 70), v("p3", "", 130)))
	f.aggs.failPut = func(pk, id string) bool { return strings.HasSuffix(pk, "1201") }
	if _, err := f.svc.Apply(context.Background(), b); !errors.Is(err, errDown) {
		t.Fatalf("Apply with minute 12:01 down: %v, want the store error", err)
	}
	if _, _, err := f.prog.Collection.Get(context.Background(), "progress", "p3"); err == nil {
		t.Fatal("progress written although a minute failed")
	}
	f.aggs.failPut = nil
	st := f.apply(t, b)
	if st.Views != 1 || st.Duplicates != 2 {
		t.Fatalf("retry: %+v, want 1 view (minute 12:01) and 2 duplicates", st)
	}
	if diff := cmp.Diff(map[string]int64{"p1": 1, "p2": 1, "p3": 1}, f.counts(t, minute(0), minute(1), minute(2))); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// A batch parked on its last retry is replayed later, one event at a time, after later batches were
// applied: each parked view counts once, even when the replay itself is repeated. (With only a
// highest-sequence-number watermark the parked views would be skipped as "already applied".)
func TestApplyParkedReplayAfterLaterBatches(t *testing.T) {
	f := newFixture(t)
	parked := views(0, v("p1", "", 10), v("p2", "", 20), v("p1", "", 30))
	f.aggs.failPut = func(pk, id string) bool { return true }
	if _, err := f.svc.Apply(context.Background(), batchOf("0", parked)); err == nil {
		t.Fatal("want a failure")
	}
	f.aggs.failPut = nil
	f.apply(t, batchOf("0", views(3, v("p1", "", 40), v("p3", "", 50))))
	for range 2 {
		for _, pv := range parked {
			f.apply(t, batchOf("0", []trends.View{pv}))
		}
	}
	if diff := cmp.Diff(map[string]int64{"p1": 3, "p2": 1, "p3": 1}, f.counts(t, minute(0))); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if got := f.progress(t, "0").Applied; !got.Equal(trends.Ranges{{0, 4}}) {
		t.Errorf("progress applied %v, want the hole filled: [0,4]", got)
	}
}

// Late events: up to the allowed lateness (enqueued time minus event time) they land in their own
// minute; later ones are counted in the Late metric, not in a bucket, and never twice.
func TestApplyLateEvents(t *testing.T) {
	f := newFixture(t)
	f.clock.Set(t0.Add(30 * time.Minute))
	vs := views(0,
		viewSpec{product: "on-time", sec: 10, enqueuedAfter: 2 * time.Second},
		viewSpec{product: "late-but-allowed", sec: 20, enqueuedAfter: 10 * time.Minute},
		viewSpec{product: "too-late", sec: 30, enqueuedAfter: 10*time.Minute + time.Second},
		viewSpec{product: "too-late", sec: 40, enqueuedAfter: 25 * time.Minute},
		viewSpec{product: "clock-ahead", sec: 600, enqueuedAfter: -9 * time.Minute}, // event time after enqueued time
	)
	b := batchOf("0", vs)
	st := f.apply(t, b)
	if st.Views != 3 || st.Late != 2 {
		t.Fatalf("stats %+v, want 3 counted and 2 late", st)
	}
	if diff := cmp.Diff(map[string]int64{"on-time": 1, "late-but-allowed": 1, "clock-ahead": 1}, f.counts(t, minute(0), minute(1))); diff != "" {
		t.Errorf("minute 12:00/12:01 counts (-want +got):\n%s", diff)
	}
	if n := len(f.counts(t, minute(10))); n != 0 {
		t.Errorf("the view with a clock ahead was counted at its event time, not clamped to its enqueued time")
	}
	p := f.progress(t, "0")
	if p.Late != 2 || p.Views != 3 {
		t.Errorf("progress metrics late=%d views=%d, want 2 and 3", p.Late, p.Views)
	}
	// 12:00 took counts after 12:10 (now is 12:30): the materializer must merge it again.
	if len(p.Reopened) == 0 || !p.Reopened[0].Minute.Equal(minute(0)) {
		t.Errorf("reopened %v, want minute 12:00", p.Reopened)
	}
	f.apply(t, b)
	if p2 := f.progress(t, "0"); p2.Late != 2 {
		t.Errorf("replay counted late events again: %d", p2.Late)
	}
	// The watermark is the latest enqueued time, whatever the event times.
	if want := t0.Add(40*time.Second + 25*time.Minute); !p.Watermark.Equal(want) {
		t.Errorf("watermark %v, want %v", p.Watermark, want)
	}
}

func TestClassify(t *testing.T) {
	cfg := trends.Config{}
	now := t0.Add(time.Hour)
	tests := []struct {
		name          string
		time, enq     time.Time
		wantMinute    time.Time
		late, expired bool
	}{
		{"on time", t0.Add(90 * time.Second), t0.Add(91 * time.Second), minute(1), false, false},
		{"no enqueued time", t0.Add(90 * time.Second), time.Time{}, minute(1), false, false},
		{"exactly the allowed lateness", t0, t0.Add(10 * time.Minute), minute(0), false, false},
		{"just over", t0, t0.Add(10*time.Minute + time.Nanosecond), time.Time{}, true, false},
		{"clock ahead is clamped", t0.Add(5 * time.Minute), t0.Add(time.Minute), minute(1), false, false},
		{"older than the reopen horizon", now.Add(-25 * time.Hour), now.Add(-25 * time.Hour), time.Time{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, late, expired := cfg.Classify(trends.View{Time: tt.time, Enqueued: tt.enq}, now)
			if !m.Equal(tt.wantMinute) || late != tt.late || expired != tt.expired {
				t.Errorf("Classify = %v late=%v expired=%v, want %v %v %v", m, late, expired, tt.wantMinute, tt.late, tt.expired)
			}
		})
	}
}

// One store write per aggregate per batch: a batch of 256 views over 2 minutes writes 3 documents.
func TestApplyOneWritePerAggregate(t *testing.T) {
	f := newFixture(t)
	var specs []viewSpec
	for i := range 256 {
		specs = append(specs, v("p"+string(rune('a'+i%7)), "c", 30+i/4)) // 12:00:30 .. 12:01:33
	}
	st := f.apply(t, batchOf("1", views(0, specs...)))
	if st.Views != 256 || st.Minutes != 2 {
		t.Fatalf("stats %+v", st)
	}
	if f.aggs.puts != 2 || f.prog.puts != 1 {
		t.Errorf("writes: %d aggregates + %d progress, want 2 + 1", f.aggs.puts, f.prog.puts)
	}
}

func TestApplyRejectsBatchesItCannotDeduplicate(t *testing.T) {
	f := newFixture(t)
	for _, b := range []trends.Batch{
		{Partition: "", Views: views(0, v("p1", "", 1))},
		{Partition: "0", Views: []trends.View{{Seq: -1, ProductID: "p1", Time: t0}}},
	} {
		if _, err := f.svc.Apply(context.Background(), b); !errors.Is(err, trends.ErrInvalid) {
			t.Errorf("Apply(%+v) = %v, want ErrInvalid", b, err)
		}
	}
}
