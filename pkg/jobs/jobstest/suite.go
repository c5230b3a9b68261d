// Package jobstest is the contract suite every jobs.Objects implementation must pass (the embedded
// jobs.Dir and the Blob container adapter).
package jobstest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/contoso/eventpipeline/pkg/jobs"
)

// RunObjects runs the suite; newObjects returns an empty container.
func RunObjects(t *testing.T, newObjects func(t *testing.T) jobs.Objects) {
	ctx := context.Background()
	t.Run("GetMissing", func(t *testing.T) {
		o := newObjects(t)
		if _, err := o.Get(ctx, "daily/2026-11-24/summary.json"); !errors.Is(err, jobs.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("PutGetOverwrite", func(t *testing.T) {
		o := newObjects(t)
		name := "daily/2026-11-24/products.csv"
		for _, b := range [][]byte{[]byte("productId\np-1\n"), []byte("v2"), {}} {
			if err := o.Put(ctx, name, b, "text/csv"); err != nil {
				t.Fatal(err)
			}
			got, err := o.Get(ctx, name)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("Get = %q, %v; want %q", got, err, b)
			}
		}
	})
	t.Run("LargeBinary", func(t *testing.T) {
		o := newObjects(t)
		b := make([]byte, 3<<20)
		for i := range b {
			b[i] = byte(i * 7)
		}
		if err := o.Put(ctx, "partials/x/2026-11-24/f.gob", b, "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
		got, err := o.Get(ctx, "partials/x/2026-11-24/f.gob")
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Get: %d bytes, %v", len(got), err)
		}
	})
	t.Run("URLNamesTheObject", func(t *testing.T) {
		o := newObjects(t)
		u := o.URL("daily/2026-11-24/summary.json")
		if !strings.HasSuffix(u, "/daily/2026-11-24/summary.json") || !strings.Contains(u, "://") || strings.Contains(u, "?") {
			t.Fatalf("URL = %q", u)
		}
	})
}
