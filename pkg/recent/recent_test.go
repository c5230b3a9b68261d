package recent_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/recent"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(p string, sec int) recent.Item {
	return recent.Item{ProductID: p, ViewedAt: t0.Add(time.Duration(sec) * time.Second)}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name        string
		cur, views  []recent.Item
		max         int
		want        []recent.Item
		wantChanged bool
	}{
		{"empty", nil, nil, 3, []recent.Item{}, false},
		{"newest first", nil, []recent.Item{at("a", 1), at("b", 3), at("c", 2)}, 3, []recent.Item{at("b", 3), at("c", 2), at("a", 1)}, true},
		{"distinct keeps latest view", []recent.Item{at("a", 5)}, []recent.Item{at("a", 9), at("a", 2)}, 3, []recent.Item{at("a", 9)}, true},
		{"older duplicate changes nothing", []recent.Item{at("a", 5)}, []recent.Item{at("a", 1)}, 3, []recent.Item{at("a", 5)}, false},
		{"truncates", []recent.Item{at("a", 3), at("b", 2)}, []recent.Item{at("c", 1), at("d", 4)}, 3, []recent.Item{at("d", 4), at("a", 3), at("b", 2)}, true},
		{"too old to enter", []recent.Item{at("a", 3), at("b", 2)}, []recent.Item{at("c", 1)}, 2, []recent.Item{at("a", 3), at("b", 2)}, false},
		{"tie broken by product id", nil, []recent.Item{at("z", 1), at("m", 1)}, 3, []recent.Item{at("m", 1), at("z", 1)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := recent.Merge(tt.cur, tt.views, tt.max)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
		})
	}
}

// TestMergeOrderIndependent: any split of a set of views into batches, applied in any order and with
// replays, gives the list computed from the whole set at once.
func TestMergeOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		var views []recent.Item
		for range r.IntN(60) {
			views = append(views, at(fmt.Sprintf("p%d", r.IntN(30)), r.IntN(100)))
		}
		want, _ := recent.Merge(nil, views, recent.MaxItems)
		shuffled := slices.Clone(views)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		var cur []recent.Item
		for len(shuffled) > 0 {
			n := min(len(shuffled), 1+r.IntN(7))
			batch := shuffled[:n]
			cur, _ = recent.Merge(cur, batch, recent.MaxItems)
			if r.IntN(3) == 0 { // replay
				var changed bool
				cur, changed = recent.Merge(cur, batch, recent.MaxItems)
				if changed {
					t.Fatalf("trial %d: replaying a batch changed the list", trial)
				}
			}
			shuffled = shuffled[n:]
		}
		if diff := cmp.Diff(want, cur, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("trial %d: batched merge differs (-whole +batched):\n%s", trial, diff)
		}
	}
}

func newService(t *testing.T) (*recent.Service, *embedded.Collection[recent.List]) {
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := embedded.NewCollection[recent.List](db, "recentlyViewed")
	if err != nil {
		t.Fatal(err)
	}
	return &recent.Service{Store: c, TTL: time.Hour, Concurrency: 4, MaxAttempts: 5}, c
}

func TestApplyWritesOncePerViewerAndReplayWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	batch := map[string][]recent.Item{"u1": {at("a", 1), at("b", 2), at("a", 3)}, "s-9": {at("c", 1)}}
	st, err := s.Apply(ctx, batch)
	if err != nil || st.Writes != 2 || st.Viewers != 2 {
		t.Fatalf("Apply = %+v, %v; want 2 writes", st, err)
	}
	st, err = s.Apply(ctx, batch)
	if err != nil || st.Writes != 0 {
		t.Fatalf("replay Apply = %+v, %v; want 0 writes", st, err)
	}
	got, err := s.Get(ctx, "u1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]recent.Item{at("a", 3), at("b", 2)}, got); diff != "" {
		t.Fatalf("Get (-want +got):\n%s", diff)
	}
	if got, _ := s.Get(ctx, "nobody", 10); len(got) != 0 || got == nil {
		t.Fatalf("unknown viewer: %#v, want empty non-nil", got)
	}
	if got, _ := s.Get(ctx, "u1", 1); len(got) != 1 {
		t.Fatalf("limit 1 gave %d items", len(got))
	}
}

// flaky fails Put with a stale-ETag conflict the first n times, as a concurrent writer would.
type flaky struct {
	recent.Store
	n int
}

func (f *flaky) Put(ctx context.Context, pk, id string, v recent.List, o docstore.PutOptions) (docstore.ETag, error) {
	if f.n > 0 {
		f.n--
		// Somebody else writes first.
		cur, etag, err := f.Store.Get(ctx, pk, id)
		if errors.Is(err, docstore.ErrNotFound) {
			f.Store.Put(ctx, pk, id, recent.List{ID: id, UserID: id, Items: []recent.Item{at("other", 50)}}, docstore.PutOptions{})
		} else {
			cur.Items, _ = recent.Merge(cur.Items, []recent.Item{at("other", 50)}, recent.MaxItems)
			f.Store.Put(ctx, pk, id, cur, docstore.PutOptions{IfMatch: etag})
		}
		return "", docstore.ErrConflict
	}
	return f.Store.Put(ctx, pk, id, v, o)
}

func TestApplyRetriesOnConcurrentWriter(t *testing.T) {
	ctx := context.Background()
	s, c := newService(t)
	s.Store = &flaky{Store: c, n: 2}
	st, err := s.Apply(ctx, map[string][]recent.Item{"u1": {at("a", 1)}})
	if err != nil || st.Conflicts != 2 || st.Writes != 1 {
		t.Fatalf("Apply = %+v, %v", st, err)
	}
	got, _ := s.Get(ctx, "u1", 10)
	if diff := cmp.Diff([]recent.Item{at("other", 50), at("a", 1)}, got); diff != "" {
		t.Fatalf("concurrent write lost (-want +got):\n%s", diff)
	}
	s.Store = &flaky{Store: c, n: 100}
	if _, err := s.Apply(ctx, map[string][]recent.Item{"u2": {at("a", 1)}}); !errors.Is(err, docstore.ErrConflict) {
		t.Fatalf("endless conflicts: err = %v, want ErrConflict after bounded attempts", err)
	}
}

func TestValidateViewer(t *testing.T) {
	for _, ok := range []string{"u1", "anon-3f2a", "user@example.com"} {
		if err := recent.ValidateViewer(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "a?b", "a#b", `a\b`, "a\nb", string(make([]byte, 129))} {
		if err := recent.ValidateViewer(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
