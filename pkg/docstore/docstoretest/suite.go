// Package docstoretest is the contract suite every docstore.Collection implementation must pass.
package docstoretest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// Doc is the document type the suite stores.
type Doc struct {
	ID    string   `json:"id"`
	PK    string   `json:"pk"`
	N     int      `json:"n"`
	Items []string `json:"items,omitempty"`
}

// Options describe what the implementation under test can show.
type Options struct {
	// TTLEnforced is false for stand-ins that ignore expiry (the npm Cosmos DB server does).
	TTLEnforced bool
}

// Run runs the suite. newColl returns an empty collection (a fresh container or partition space).
func Run(t *testing.T, newColl func(t *testing.T) docstore.Collection[Doc], opts Options) {
	ctx := context.Background()
	t.Run("GetMissing", func(t *testing.T) {
		c := newColl(t)
		if _, _, err := c.Get(ctx, "p", "nope"); !errors.Is(err, docstore.ErrNotFound) {
			t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("PutGetRoundTrip", func(t *testing.T) {
		c := newColl(t)
		in := Doc{ID: "a", PK: "p", N: 7, Items: []string{"x", "y"}}
		etag, err := c.Put(ctx, "p", "a", in, docstore.PutOptions{})
		if err != nil || etag == "" {
			t.Fatalf("Put: etag %q, err %v", etag, err)
		}
		got, etag2, err := c.Get(ctx, "p", "a")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.ID != in.ID || got.N != in.N || fmt.Sprint(got.Items) != fmt.Sprint(in.Items) {
			t.Fatalf("Get = %+v, want %+v", got, in)
		}
		if etag2 != etag {
			t.Fatalf("Get etag %q, Put returned %q", etag2, etag)
		}
	})
	t.Run("PartitionsAreSeparate", func(t *testing.T) {
		c := newColl(t)
		mustPut(t, c, Doc{ID: "a", PK: "p1", N: 1}, docstore.PutOptions{})
		if _, _, err := c.Get(ctx, "p2", "a"); !errors.Is(err, docstore.ErrNotFound) {
			t.Fatalf("Get in other partition: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("IfNoneMatchCreatesOnce", func(t *testing.T) {
		c := newColl(t)
		mustPut(t, c, Doc{ID: "a", PK: "p", N: 1}, docstore.PutOptions{IfNoneMatch: true})
		_, err := c.Put(ctx, "p", "a", Doc{ID: "a", PK: "p", N: 2}, docstore.PutOptions{IfNoneMatch: true})
		if !errors.Is(err, docstore.ErrConflict) {
			t.Fatalf("second create: err = %v, want ErrConflict", err)
		}
		got, _, _ := c.Get(ctx, "p", "a")
		if got.N != 1 {
			t.Fatalf("after failed create N = %d, want 1", got.N)
		}
	})
	t.Run("IfMatchDetectsStaleETag", func(t *testing.T) {
		c := newColl(t)
		e1 := mustPut(t, c, Doc{ID: "a", PK: "p", N: 1}, docstore.PutOptions{})
		e2, err := c.Put(ctx, "p", "a", Doc{ID: "a", PK: "p", N: 2}, docstore.PutOptions{IfMatch: e1})
		if err != nil {
			t.Fatalf("replace with current etag: %v", err)
		}
		if e2 == e1 {
			t.Fatalf("etag did not change on replace")
		}
		if _, err := c.Put(ctx, "p", "a", Doc{ID: "a", PK: "p", N: 3}, docstore.PutOptions{IfMatch: e1}); !errors.Is(err, docstore.ErrConflict) {
			t.Fatalf("replace with stale etag: err = %v, want ErrConflict", err)
		}
		got, _, _ := c.Get(ctx, "p", "a")
		if got.N != 2 {
			t.Fatalf("N = %d, want 2", got.N)
		}
	})
	t.Run("IfMatchOnMissingIsConflictOrNotFound", func(t *testing.T) {
		c := newColl(t)
		_, err := c.Put(ctx, "p", "zz", Doc{ID: "zz", PK: "p"}, docstore.PutOptions{IfMatch: `"1"`})
		if !errors.Is(err, docstore.ErrConflict) && !errors.Is(err, docstore.ErrNotFound) {
			t.Fatalf("replace of missing doc: err = %v, want ErrConflict or ErrNotFound", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		c := newColl(t)
		mustPut(t, c, Doc{ID: "a", PK: "p", N: 1}, docstore.PutOptions{})
		if err := c.Delete(ctx, "p", "a"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, _, err := c.Get(ctx, "p", "a"); !errors.Is(err, docstore.ErrNotFound) {
			t.Fatalf("Get after delete: err = %v", err)
		}
		if err := c.Delete(ctx, "p", "a"); err != nil {
			t.Fatalf("Delete missing: %v", err)
		}
	})
	t.Run("List", func(t *testing.T) {
		c := newColl(t)
		for i := range 5 {
			mustPut(t, c, Doc{ID: fmt.Sprintf("d%d", i), PK: "lp", N: i}, docstore.PutOptions{})
		}
		mustPut(t, c, Doc{ID: "other", PK: "op", N: 9}, docstore.PutOptions{})
		var ids []string
		err := c.List(ctx, "lp", func(id string, v Doc, etag docstore.ETag) error {
			if v.ID != id || etag == "" {
				return fmt.Errorf("List gave id %q doc %+v etag %q", id, v, etag)
			}
			ids = append(ids, id)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(ids)
		if fmt.Sprint(ids) != "[d0 d1 d2 d3 d4]" {
			t.Fatalf("List ids = %v", ids)
		}
		stop := errors.New("stop")
		n := 0
		if err := c.List(ctx, "lp", func(string, Doc, docstore.ETag) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Fatalf("List did not stop: err %v after %d calls", err, n)
		}
	})
	t.Run("ConcurrentIncrementsWithRetry", func(t *testing.T) {
		c := newColl(t)
		mustPut(t, c, Doc{ID: "ctr", PK: "p"}, docstore.PutOptions{})
		const workers, each = 4, 5
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					for attempt := 0; ; attempt++ {
						d, etag, err := c.Get(ctx, "p", "ctr")
						if err != nil {
							errs <- err
							return
						}
						d.N++
						if _, err = c.Put(ctx, "p", "ctr", d, docstore.PutOptions{IfMatch: etag}); err == nil {
							break
						} else if !errors.Is(err, docstore.ErrConflict) || attempt > 100 {
							errs <- err
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got, _, _ := c.Get(ctx, "p", "ctr")
		if got.N != workers*each {
			t.Fatalf("N = %d, want %d (lost updates)", got.N, workers*each)
		}
	})
	if opts.TTLEnforced {
		t.Run("TTLExpires", func(t *testing.T) {
			c := newColl(t)
			mustPut(t, c, Doc{ID: "t", PK: "p"}, docstore.PutOptions{TTL: time.Second})
			mustPut(t, c, Doc{ID: "keep", PK: "p"}, docstore.PutOptions{})
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, _, err := c.Get(ctx, "p", "t")
				if errors.Is(err, docstore.ErrNotFound) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("document with 1s TTL still there after 10s (err %v)", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if _, _, err := c.Get(ctx, "p", "keep"); err != nil {
				t.Fatalf("document without TTL: %v", err)
			}
		})
	}
}

func mustPut(t *testing.T, c docstore.Collection[Doc], d Doc, o docstore.PutOptions) docstore.ETag {
	t.Helper()
	e, err := c.Put(context.Background(), d.PK, d.ID, d, o)
	if err != nil {
		t.Fatalf("Put %s/%s: %v", d.PK, d.ID, err)
	}
	return e
}
