package blob_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/contoso/eventpipeline/internal/standins"
	"github.com/contoso/eventpipeline/pkg/azure/blob"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// testClient connects to Azurite, skipping the test when it is not configured (failing in CI, where
// a missing stand-in must not pass as green).
func testClient(t *testing.T) *blob.Client {
	t.Helper()
	conn := standins.Require(t, "STANDINS_AZURITE_CONNECTION")
	c, err := blob.NewClient(&settings.Storage{ConnectionString: conn})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runID keeps containers of concurrent or repeated runs apart (Azurite keeps them until restarted).
var runID = strings.ToLower(rand.Text()[:8])

var containers atomic.Int32

// newContainer creates an empty container that is deleted when the test ends.
func newContainer(t *testing.T, c *blob.Client) string {
	t.Helper()
	name := fmt.Sprintf("deadletter-%s-%d", runID, containers.Add(1))
	if err := c.EnsureContainer(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := c.Azblob().DeleteContainer(context.Background(), name, nil); err != nil {
			t.Logf("delete container %s: %v", name, err)
		}
	})
	return name
}

func TestDeadLettersContract(t *testing.T) {
	c := testClient(t)
	deadlettertest.Run(t, func(t *testing.T) deadletter.Store {
		return blob.NewDeadLetters(c, newContainer(t, c))
	})
}

// The layout is what operators see in Storage Explorer.
func TestDeadLetterBlobLayout(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	name := newContainer(t, c)
	s := blob.NewDeadLetters(c, name)
	r := deadletter.Record{ID: "abc", Function: "RecentlyViewed", Kind: deadletter.KindPoison, Reason: "not JSON"}
	r.SetBody([]byte("x"))
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Azblob().DownloadStream(ctx, name, "RecentlyViewed/abc.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.ContentType; ct == nil || *ct != "application/json" {
		t.Errorf("content type %v, want application/json", ct)
	}
	if !strings.HasPrefix(string(body), "{\n  \"id\": \"abc\",\n") {
		t.Errorf("body is not indented JSON:\n%s", body)
	}
}

func TestEnsureContainerIsIdempotent(t *testing.T) {
	c := testClient(t)
	name := newContainer(t, c)
	if err := c.EnsureContainer(context.Background(), name); err != nil {
		t.Fatalf("second EnsureContainer: %v", err)
	}
}

func TestMissingContainerHoldsNoRecords(t *testing.T) {
	c := testClient(t)
	s := blob.NewDeadLetters(c, fmt.Sprintf("missing-%s", runID))
	n := 0
	if err := s.List(context.Background(), "", func(deadletter.Record) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("List of a missing container: %d records, err %v", n, err)
	}
	if err := s.Delete(context.Background(), "A", "1"); err != nil {
		t.Fatalf("Delete in a missing container: %v", err)
	}
}
