package trends_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/trends"
)

func TestGrowth(t *testing.T) {
	tests := []struct {
		views, prev, floor int64
		want               float64
	}{
		{3, 1, 10, 0.2},  // 1 -> 3 is not +200%
		{12, 0, 10, 1.2}, // a new product with 12 views
		{160, 100, 10, 0.6},
		{50, 100, 10, -0.5},
		{30, 20, 20, 0.5},
		{1, 0, 0, 1}, // a zero floor still divides by at least 1
	}
	for _, tt := range tests {
		if got := trends.Growth(tt.views, tt.prev, tt.floor); got != tt.want {
			t.Errorf("Growth(%d, %d, %d) = %v, want %v", tt.views, tt.prev, tt.floor, got, tt.want)
		}
	}
}

func TestRisingFloor(t *testing.T) {
	cur := map[string]int64{"tiny": 3, "new": 12, "up": 160, "flat": 110, "down": 50, "tie-a": 30, "tie-b": 30}
	prev := map[string]int64{"tiny": 1, "up": 100, "flat": 100, "down": 100, "tie-a": 10, "tie-b": 10}
	got := trends.Rising(cur, prev, 10, 50)
	want := []trends.RisingEntry{
		{ProductID: "tie-a", Views: 30, PreviousViews: 10, Growth: 2},
		{ProductID: "tie-b", Views: 30, PreviousViews: 10, Growth: 2},
		{ProductID: "new", Views: 12, PreviousViews: 0, Growth: 1.2},
		{ProductID: "up", Views: 160, PreviousViews: 100, Growth: 0.6},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Rising (-want +got):\n%s", diff)
	}
	top := trends.Top(cur, 3)
	wantTop := []trends.Entry{{ProductID: "up", Views: 160}, {ProductID: "flat", Views: 110}, {ProductID: "down", Views: 50}}
	if diff := cmp.Diff(wantTop, top); diff != "" {
		t.Errorf("Top (-want +got):\n%s", diff)
	}
}

func TestParseQuery(t *testing.T) {
	now := t0
	tests := []struct {
		query   string
		want    trends.Query
		wantErr []string // params in error
	}{
		{"", trends.Query{Window: "1h", Limit: 10, At: now}, nil},
		{"code=secret&window=15m&limit=50", trends.Query{Window: "15m", Limit: 50, At: now}, nil},
		{"window=24h&category=garden&at=2026-11-25T11:30:15Z", trends.Query{Window: "24h", Limit: 10, Category: "garden", At: t0.Add(-29*time.Minute - 45*time.Second)}, nil},
		{"at=2026-11-25T12:30:00%2B01:00", trends.Query{Window: "1h", Limit: 10, At: t0.Add(-30 * time.Minute)}, nil},
		{"window=2h", trends.Query{}, []string{"window"}},
		{"window=", trends.Query{}, []string{"window"}},
		{"limit=0", trends.Query{}, []string{"limit"}},
		{"limit=51", trends.Query{}, []string{"limit"}},
		{"limit=ten", trends.Query{}, []string{"limit"}},
		{"limit=1&limit=2", trends.Query{}, []string{"limit"}},
		{"category=", trends.Query{}, []string{"category"}},
		{"category=" + strings.Repeat("x", 129), trends.Query{}, []string{"category"}},
		{"category=a%00b", trends.Query{}, []string{"category"}},
		{"category=%ff", trends.Query{}, []string{"category"}},
		{"at=yesterday", trends.Query{}, []string{"at"}},
		{"at=2026-11-25T12:05:00Z", trends.Query{}, []string{"at"}},
		{"at=2026-11-20T12:00:00Z", trends.Query{}, []string{"at"}},
		{"window=1d&limit=-1&at=x", trends.Query{}, []string{"window", "limit", "at"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			got, err := trends.ParseQuery(q, now, 48*time.Hour)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				return
			}
			var qe trends.QueryError
			if !errors.As(err, &qe) || !errors.Is(err, trends.ErrInvalid) {
				t.Fatalf("error %v, want a QueryError", err)
			}
			var params []string
			for _, p := range qe {
				params = append(params, p.Param)
			}
			if diff := cmp.Diff(tt.wantErr, params); diff != "" {
				t.Errorf("params in error (-want +got):\n%s", diff)
			}
		})
	}
}

// The parser must never panic and must either reject a query or return one within bounds.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "window=15m&limit=5", "window=24h&category=garden&at=2026-11-25T11:00:00Z", "limit=50&limit=1", "at=2026-11-25T12:00:00.123456789%2B14:00", "category=%ff%00", "window=1h;x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		got, err := trends.ParseQuery(q, t0, 48*time.Hour)
		if err != nil {
			if !errors.Is(err, trends.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if got.Window.Duration() == 0 || got.Limit < 1 || got.Limit > trends.MaxLimit || len(got.Category) > trends.MaxCategoryLen {
			t.Fatalf("accepted out of bounds: %+v", got)
		}
		if got.At.After(t0.Add(time.Minute)) || got.At.Before(t0.Add(-48*time.Hour)) {
			t.Fatalf("accepted at %v", got.At)
		}
	})
}

// clicksAt builds views for partition traffic: product -> count, all in minute m.
func clicksAt(first int64, m time.Time, counts map[string]int, category func(string) string) []trends.View {
	var out []trends.View
	seq := first
	for _, p := range sortedKeys(counts) {
		for i := range counts[p] {
			at := m.Add(time.Duration(i%50) * time.Second)
			out = append(out, trends.View{Seq: seq, ProductID: p, Category: category(p), Time: at, Enqueued: at.Add(time.Second)})
			seq++
		}
	}
	return out
}

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func cat(p string) string {
	if strings.HasPrefix(p, "g") {
		return "garden"
	}
	return "tools"
}

// End to end in the domain: two partitions count, the materializer runs once, and GetTrending's read
// serves top and rising with a bounded number of point reads.
func TestMaterializeAndServe(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Previous hour (11:00-11:59): t1 popular, t2 rare. This hour (12:00-12:59): t2 rises.
	prevHour := t0.Add(-time.Hour)
	f.apply(t, batchOf("0", clicksAt(0, prevHour.Add(10*time.Minute), map[string]int{"t1": 40, "t2": 5, "g1": 30}, cat)))
	f.apply(t, batchOf("0", clicksAt(75, t0.Add(10*time.Minute), map[string]int{"t1": 30, "t2": 25}, cat)))
	f.apply(t, batchOf("1", clicksAt(0, t0.Add(20*time.Minute), map[string]int{"t1": 10, "t2": 15, "g1": 20, "g2": 3}, cat)))

	// The timer ticks every minute from 12:00 to 13:00, a few seconds after the minute.
	for m := 0; m <= 60; m++ {
		f.clock.Set(t0.Add(time.Duration(m)*time.Minute + 5*time.Second))
		st, err := f.svc.Materialize(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Snapshots == 0 {
			t.Fatalf("tick %d: no snapshots written: %+v", m, st)
		}
	}
	q, err := trends.ParseQuery(url.Values{}, f.clock.Now(), 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []interface{ reset() }{f.aggs, f.prog, f.tots, f.snaps, f.state} {
		c.reset()
	}
	res, err := f.svc.Trending(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if f.snaps.gets != 1 || res.Reads != 1 {
		t.Errorf("GetTrending cost %d reads (reported %d), want 1", f.snaps.gets, res.Reads)
	}
	if f.snaps.lists+f.aggs.gets+f.aggs.lists+f.tots.gets+f.tots.lists+f.prog.gets+f.prog.lists+f.state.gets != 0 {
		t.Errorf("GetTrending touched more than the snapshot")
	}
	wantTop := []trends.Entry{{ProductID: "t1", Views: 40}, {ProductID: "t2", Views: 40}, {ProductID: "g1", Views: 20}, {ProductID: "g2", Views: 3}}
	if diff := cmp.Diff(wantTop, res.Top); diff != "" {
		t.Errorf("top (-want +got):\n%s", diff)
	}
	// t2: 5 -> 40 (growth 35/20 = 1.75); t1: 40 -> 40 (0); g1: 30 -> 20 (falling); g2 under the floor.
	wantRising := []trends.RisingEntry{{ProductID: "t2", Views: 40, PreviousViews: 5, Growth: 1.75}}
	if diff := cmp.Diff(wantRising, res.Rising); diff != "" {
		t.Errorf("rising (-want +got):\n%s", diff)
	}
	if !res.AsOf.Equal(t0.Add(time.Hour)) {
		t.Errorf("asOf %v, want 13:00", res.AsOf)
	}

	// A category: its own snapshot; an unknown category: answered empty from the site snapshot.
	q.Category = "garden"
	res, err = f.svc.Trending(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]trends.Entry{{ProductID: "g1", Views: 20}, {ProductID: "g2", Views: 3}}, res.Top); diff != "" {
		t.Errorf("garden top (-want +got):\n%s", diff)
	}
	q.Category = "no-such-category"
	f.snaps.reset()
	res, err = f.svc.Trending(ctx, q)
	if err != nil || len(res.Top) != 0 || len(res.Rising) != 0 || res.Top == nil || res.Rising == nil {
		t.Errorf("unknown category: %+v, %v; want empty lists", res, err)
	}
	if f.snaps.gets != 2 {
		t.Errorf("unknown category cost %d reads, want 2", f.snaps.gets)
	}
	// The limit cuts the lists.
	q.Category, q.Limit = "", 2
	res, _ = f.svc.Trending(ctx, q)
	if len(res.Top) != 2 {
		t.Errorf("limit 2: %d entries", len(res.Top))
	}
	// A 15-minute window at 12:30 sees only 12:15-12:29.
	q.Window, q.Limit, q.At = trends.Window15m, 10, t0.Add(30*time.Minute+20*time.Second)
	res, err = f.svc.Trending(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]trends.Entry{{ProductID: "g1", Views: 20}, {ProductID: "t2", Views: 15}, {ProductID: "t1", Views: 10}, {ProductID: "g2", Views: 3}}, res.Top); diff != "" {
		t.Errorf("15m at 12:30 (-want +got):\n%s", diff)
	}
	// Before the materializer ever ran for that time: not materialized (at most 4 reads).
	q.At = t0.Add(-47 * time.Hour)
	f.snaps.reset()
	if _, err := f.svc.Trending(ctx, q); !errors.Is(err, trends.ErrNotMaterialized) {
		t.Errorf("unmaterialized: %v", err)
	}
	if f.snaps.gets > 4 {
		t.Errorf("unmaterialized cost %d reads", f.snaps.gets)
	}
}

// One tick of the materializer after the clicks makes them visible.
func TestOneTickMakesClicksVisible(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.clock.Set(t0.Add(5 * time.Second))
	if _, err := f.svc.Materialize(ctx); err != nil { // a tick before the clicks
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(20 * time.Second))
	f.apply(t, batchOf("0", clicksAt(0, t0, map[string]int{"fresh": 12}, cat)))
	top := func() []trends.Entry {
		q, _ := trends.ParseQuery(url.Values{"window": {"15m"}}, f.clock.Now(), 48*time.Hour)
		res, err := f.svc.Trending(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return res.Top
	}
	if got := top(); len(got) != 0 {
		t.Fatalf("visible before the tick: %v", got)
	}
	f.clock.Set(t0.Add(time.Minute + 2*time.Second))
	if _, err := f.svc.Materialize(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]trends.Entry{{ProductID: "fresh", Views: 12}}, top()); diff != "" {
		t.Errorf("after one tick (-want +got):\n%s", diff)
	}
}

// The closed-minute rule, and the materializer merging a reopened minute again.
func TestClosedThrough(t *testing.T) {
	cfg := trends.Config{}
	now := t0.Add(30 * time.Minute)
	tests := []struct {
		name     string
		progress []trends.Progress
		want     time.Time
	}{
		{"no partitions: now minus lateness", nil, minute(19)},
		{"caught-up partitions", []trends.Progress{{Watermark: now.Add(-time.Second), UpdatedAt: now}, {Watermark: now.Add(-2 * time.Second), UpdatedAt: now}}, minute(18)},
		{"watermarks at the boundary", []trends.Progress{{Watermark: now, UpdatedAt: now}}, minute(19)},
		{"a lagging partition holds minutes open", []trends.Progress{{Watermark: now, UpdatedAt: now}, {Watermark: t0.Add(15*time.Minute + 30*time.Second), UpdatedAt: now}}, minute(4)},
		{"an idle partition is not waited for", []trends.Progress{{Watermark: now, UpdatedAt: now}, {Watermark: t0, UpdatedAt: now.Add(-2 * time.Minute)}}, minute(19)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cfg.ClosedThrough(tt.progress, now); !got.Equal(tt.want) {
				t.Errorf("ClosedThrough = %s, want %s", got.Format("15:04"), tt.want.Format("15:04"))
			}
		})
	}
}

func TestClosedMinuteAndReopen(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.apply(t, batchOf("0", clicksAt(0, t0, map[string]int{"a": 5}, cat)))
	f.clock.Set(t0.Add(2 * time.Minute))
	if _, err := f.svc.Materialize(ctx); err != nil {
		t.Fatal(err)
	}
	mc, err := f.svc.ClosedMinute(ctx, t0)
	if err != nil || mc.Closed {
		t.Fatalf("12:00 at 12:02: %+v %v, want open (lateness not passed)", mc, err)
	}
	// The partition keeps applying batches (not idle); its watermark passes 12:11 at 12:12.
	f.clock.Set(t0.Add(12 * time.Minute))
	f.apply(t, batchOf("0", clicksAt(5, t0.Add(11*time.Minute), map[string]int{"b": 1}, cat)))
	if _, err := f.svc.Materialize(ctx); err != nil {
		t.Fatal(err)
	}
	mc, err = f.svc.ClosedMinute(ctx, t0)
	if err != nil || !mc.Closed || mc.Views != 5 || mc.Categories["tools"] != 5 {
		t.Fatalf("12:00 at 12:12: %+v %v, want closed with 5 views", mc, err)
	}
	// A parked view of 12:00 replayed at 12:40 reopens the minute; the next tick merges it again.
	f.clock.Set(t0.Add(40 * time.Minute))
	f.apply(t, batchOf("0", []trends.View{{Seq: 100, ProductID: "a", Category: "tools", Time: t0.Add(3 * time.Second), Enqueued: t0.Add(4 * time.Second)}}))
	st, err := f.svc.Materialize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reopened != 1 {
		t.Errorf("reopened %d minutes, want 1", st.Reopened)
	}
	mc, _ = f.svc.ClosedMinute(ctx, t0)
	if mc.Views != 6 {
		t.Errorf("12:00 after the replay: %d views, want 6", mc.Views)
	}
	// Reopens are tracked by revision, not by sequence number: a replayed event with a lower sequence
	// number than an earlier reopen still gets its minute merged again.
	f.clock.Set(t0.Add(50 * time.Minute))
	f.apply(t, batchOf("0", []trends.View{{Seq: 5000, ProductID: "c", Category: "tools", Time: t0.Add(30 * time.Minute), Enqueued: t0.Add(35 * time.Minute)}}))
	if _, err := f.svc.Materialize(ctx); err != nil {
		t.Fatal(err)
	}
	f.apply(t, batchOf("0", []trends.View{{Seq: 50, ProductID: "d", Category: "tools", Time: t0.Add(time.Minute), Enqueued: t0.Add(time.Minute)}}))
	if _, err := f.svc.Materialize(ctx); err != nil {
		t.Fatal(err)
	}
	if mc, _ := f.svc.ClosedMinute(ctx, t0.Add(time.Minute)); mc.Views != 1 {
		t.Errorf("12:01 after a low-sequence replay: %d views, want 1", mc.Views)
	}
	// A minute without any view is closed with zero views (an outage reads as zero, not missing).
	mc, _ = f.svc.ClosedMinute(ctx, t0.Add(5*time.Minute))
	if !mc.Closed || mc.Missing || mc.Views != 0 {
		t.Errorf("empty minute: %+v", mc)
	}
}

// Materializer writes per tick in steady state, reported for the docs.
func TestMaterializeCostPerTick(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	seq := map[string]int64{}
	for m := range 90 {
		for _, part := range []string{"0", "1", "2", "3"} {
			counts := map[string]int{}
			for i := range 20 {
				counts[fmt.Sprintf("%s%d", []string{"t", "g"}[i%2], (i*7+m)%13)]++
			}
			vs := clicksAt(seq[part], t0.Add(time.Duration(m)*time.Minute), counts, cat)
			seq[part] += int64(len(vs))
			f.clock.Set(t0.Add(time.Duration(m)*time.Minute + 55*time.Second))
			f.apply(t, batchOf(part, vs))
		}
		f.clock.Set(t0.Add(time.Duration(m+1)*time.Minute + 2*time.Second))
		f.aggs.reset()
		f.tots.reset()
		f.snaps.reset()
		st, err := f.svc.Materialize(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m == 89 {
			t.Logf("steady-state tick: %+v; aggregate lists %d, totals gets %d lists %d, snapshot writes %d",
				st, f.aggs.lists, f.tots.gets, f.tots.lists, f.snaps.puts)
			if st.Merged > 13 {
				t.Errorf("merged %d minutes per tick, want about lateness+1", st.Merged)
			}
			if f.snaps.puts != 3*3 { // 3 windows x (site + 2 categories)
				t.Errorf("snapshot writes %d, want 9", f.snaps.puts)
			}
		}
	}
}
