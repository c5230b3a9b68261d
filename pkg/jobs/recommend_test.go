package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/jobs"
)

// view is a product view of a session at an offset into the day.
type view struct {
	session, product string
	at               time.Duration
}

func viewEvent(d time.Time, v view, seq int) capture.Event {
	t := d.Add(v.at)
	body := fmt.Sprintf(`{"specversion":"1.0","id":"v-%s-%d","source":"/web","type":"com.contoso.clickstream.product.viewed","time":%q,"data":{"sessionId":%q,"productId":%q,"category":"tools"}}`,
		v.session, seq, t.Format(time.RFC3339Nano), v.session, v.product)
	return capture.Event{SequenceNumber: int64(seq), Offset: fmt.Sprint(seq), EnqueuedTime: t, Body: []byte(body)}
}

// writeViews writes views as Capture files of partition p and the 5-minute window of each view.
func (f *fixture) writeViews(d time.Time, p string, views ...view) {
	f.t.Helper()
	groups := map[time.Time][]capture.Event{}
	for i, v := range views {
		w := d.Add(v.at).Truncate(5 * time.Minute)
		groups[w] = append(groups[w], viewEvent(d, v, i))
	}
	for w, evs := range groups {
		f.writeFile(capture.Path{Namespace: "ns", EventHub: "clickstream", Partition: p, Window: w}, evs)
	}
}

func TestViewedTogether(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	h := time.Hour
	m := time.Minute
	// s3 spans two windows and two partitions; s1's last view comes after the session gap and
	// starts a new session for pairing.
	f.writeViews(day, "0",
		view{"s1", "A", 10 * h}, view{"s1", "B", 10*h + m}, view{"s1", "C", 10*h + 2*m},
		view{"s2", "A", 10 * h}, view{"s2", "B", 10*h + 3*m}, view{"s2", "B", 10*h + 4*m},
		view{"s3", "A", 10*h + 4*m},
		view{"s1", "D", 12 * h})
	f.writeViews(day, "1",
		view{"s3", "B", 10*h + 6*m},
		view{"s4", "A", 10*h + 6*m}, view{"s4", "B", 10*h + 7*m},
		view{"s5", "B", 10*h + 8*m}, view{"s5", "A", 10*h + 9*m},
		view{"s6", "C", 20 * h})
	if _, err := f.job.RunDay(ctx, day, jobs.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func(id string) jobs.Recommendation {
		t.Helper()
		r, _, err := f.stores.Recommendations.Get(ctx, id, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return r
	}
	a := get("A")
	want := jobs.Recommendation{ID: "A", ProductID: "A", Category: "tools", Day: "2026-11-24",
		Items:      []jobs.Scored{{ProductID: "B", Score: 5}},
		Candidates: []jobs.Scored{{ProductID: "B", Score: 5}, {ProductID: "C", Score: 1}}}
	if diff := cmp.Diff(want, a, cmpopts.IgnoreFields(jobs.Recommendation{}, "UpdatedAt"), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("A (-want +got):\n%s", diff)
	}
	if d := get("D"); len(d.Items) != 0 || len(d.Candidates) != 0 || d.Category != "tools" {
		t.Errorf("D, viewed after the gap, has co-views: %+v", d)
	}
	if s := f.summary(day); s.ViewedTogether.PairedSessions != 5 || s.ViewedTogether.Products != 3 {
		t.Errorf("summary viewedTogether %+v, want 5 paired sessions over 3 products", s.ViewedTogether)
	}

	// The next day: one more session; the earlier count decays by 2^(-1/7).
	next := day.AddDate(0, 0, 1)
	f.writeViews(next, "0", view{"s7", "A", 9 * h}, view{"s7", "B", 9*h + m})
	f.clock = now.AddDate(0, 0, 1)
	if _, err := f.job.RunDay(ctx, next, jobs.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	decayed := 1 + 5*math.Exp2(-1.0/7)
	a = get("A")
	if a.Day != "2026-11-25" || len(a.Items) != 1 || a.Items[0].ProductID != "B" || math.Abs(a.Items[0].Score-decayed) > 1e-6 {
		t.Fatalf("A after day 2: %+v, want B scored %.6f", a, decayed)
	}
	// C decays below MinSupport and stays a candidate (1·2^(-1/7) >= 0.5).
	if len(a.Candidates) != 2 || a.Candidates[1].ProductID != "C" || math.Abs(a.Candidates[1].Score-math.Exp2(-1.0/7)) > 1e-6 {
		t.Fatalf("A's candidates %+v", a.Candidates)
	}
	// Re-running day 2 gives the same; re-running day 1 leaves the newer state alone.
	for _, d := range []time.Time{next, day} {
		res, err := f.job.RunDay(ctx, d, jobs.RunOptions{Rerun: true})
		if err != nil {
			t.Fatal(err)
		}
		if d.Equal(day) && res.Recommendations.Newer == 0 {
			t.Errorf("re-run of day 1 applied over day 2: %+v", res.Recommendations)
		}
		if diff := cmp.Diff(a, get("A"), cmpopts.IgnoreFields(jobs.Recommendation{}, "UpdatedAt")); diff != "" {
			t.Errorf("re-run of %s changed A:\n%s", d.Format("2006-01-02"), diff)
		}
	}
}

type fakeTrending map[string][]jobs.Scored

func (f fakeTrending) TopInCategory(ctx context.Context, category string, limit int) ([]jobs.Scored, error) {
	if category == "broken" {
		return nil, errors.New("trends store down")
	}
	top := f[category]
	if len(top) > limit {
		top = top[:limit]
	}
	return top, nil
}

type fakeCategories map[string]string

func (f fakeCategories) CategoryOf(ctx context.Context, id string) (string, error) { return f[id], nil }

func TestRecommenderAnswers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	put := func(r jobs.Recommendation) {
		if _, err := f.stores.Recommendations.Put(ctx, r.ProductID, r.ProductID, r, docstoreOpts); err != nil {
			t.Fatal(err)
		}
	}
	items := make([]jobs.Scored, 20)
	for i := range items {
		items[i] = jobs.Scored{ProductID: fmt.Sprintf("q-%02d", i), Score: float64(40 - i)}
	}
	put(jobs.Recommendation{ID: "p-1", ProductID: "p-1", Category: "tools", Day: "2026-11-24", Items: items})
	put(jobs.Recommendation{ID: "p-2", ProductID: "p-2", Category: "garden", Day: "2026-11-24", Items: []jobs.Scored{}})
	trending := fakeTrending{
		"garden": {{ProductID: "p-2", Score: 900}, {ProductID: "g-1", Score: 800}, {ProductID: "g-2", Score: 700}},
		"toys":   {{ProductID: "t-1", Score: 50}},
		"":       {{ProductID: "s-1", Score: 5000}},
	}
	r := &jobs.Recommender{Store: f.stores.Recommendations, Trending: trending, Categories: fakeCategories{"p-3": "toys", "p-5": "broken"}}
	for _, tc := range []struct {
		id    string
		limit int
		want  jobs.Answer
	}{
		{"p-1", 3, jobs.Answer{ProductID: "p-1", Source: "viewed-together", AsOf: "2026-11-24", Items: items[:3]}},
		{"p-1", 20, jobs.Answer{ProductID: "p-1", Source: "viewed-together", AsOf: "2026-11-24", Items: items}},
		// No co-views: the category's trending products, without the product itself.
		{"p-2", 2, jobs.Answer{ProductID: "p-2", Source: "trending-fallback", Fallback: true, Category: "garden",
			Items: []jobs.Scored{{ProductID: "g-1", Score: 800}, {ProductID: "g-2", Score: 700}}}},
		// No document: the catalog knows the category.
		{"p-3", 10, jobs.Answer{ProductID: "p-3", Source: "trending-fallback", Fallback: true, Category: "toys", Items: []jobs.Scored{{ProductID: "t-1", Score: 50}}}},
		// Unknown everywhere: site-wide trending.
		{"p-4", 10, jobs.Answer{ProductID: "p-4", Source: "trending-fallback", Fallback: true, Items: []jobs.Scored{{ProductID: "s-1", Score: 5000}}}},
	} {
		got, err := r.Get(ctx, tc.id, tc.limit)
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s limit %d (-want +got):\n%s", tc.id, tc.limit, diff)
		}
	}
	for _, bad := range []struct {
		id    string
		limit int
	}{{"", 10}, {"a/b", 10}, {"a#b", 10}, {" a", 10}, {"a\x01", 10}, {string(make([]byte, 129)), 10}, {"p-1", 0}, {"p-1", 21}} {
		if _, err := r.Get(ctx, bad.id, bad.limit); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("Get(%q, %d): err = %v, want ErrInvalid", bad.id, bad.limit, err)
		}
	}
	if _, err := r.Get(ctx, "p-5", 10); err == nil || errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("a failing trending store: err = %v, want a transient error", err)
	}
	// Without a trending source the fallback is empty, and still says so.
	bare := &jobs.Recommender{Store: f.stores.Recommendations}
	got, err := bare.Get(ctx, "p-9", 5)
	if err != nil || !got.Fallback || got.Items == nil || len(got.Items) != 0 {
		t.Errorf("no trending: %+v, %v", got, err)
	}
}
