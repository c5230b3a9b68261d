package embedded_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/docstore/docstoretest"
	"github.com/contoso/eventpipeline/pkg/embedded"
)

func TestContract(t *testing.T) {
	docstoretest.Run(t, func(t *testing.T) docstore.Collection[docstoretest.Doc] {
		db, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		c, err := embedded.NewCollection[docstoretest.Doc](db, "test")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}, docstoretest.Options{TTLEnforced: true})
}

func TestSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, _ := embedded.Open(dir)
	c, _ := embedded.NewCollection[docstoretest.Doc](db, "docs")
	for i := range 3 {
		if _, err := c.Put(ctx, "p", "a", docstoretest.Doc{ID: "a", PK: "p", N: i}, docstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.Put(ctx, "p", "gone", docstoretest.Doc{ID: "gone"}, docstore.PutOptions{})
	c.Delete(ctx, "p", "gone")
	c.Put(ctx, "p", "short", docstoretest.Doc{ID: "short"}, docstore.PutOptions{TTL: time.Millisecond})
	_, etag, _ := c.Get(ctx, "p", "a")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)

	db2, _ := embedded.Open(dir)
	defer db2.Close()
	c2, err := embedded.NewCollection[docstoretest.Doc](db2, "docs")
	if err != nil {
		t.Fatal(err)
	}
	got, etag2, err := c2.Get(ctx, "p", "a")
	if err != nil || got.N != 2 || etag2 != etag {
		t.Fatalf("after restart: %+v %q %v, want N=2 etag %q", got, etag2, err, etag)
	}
	for _, id := range []string{"gone", "short"} {
		if _, _, err := c2.Get(ctx, "p", id); !errors.Is(err, docstore.ErrNotFound) {
			t.Fatalf("%s after restart: %v", id, err)
		}
	}
	// New writes continue the ETag sequence: an old ETag never matches a new version.
	e3, _ := c2.Put(ctx, "p", "a", got, docstore.PutOptions{IfMatch: etag})
	if e3 == etag {
		t.Fatal("etag reused after restart")
	}
}
