package cosmos

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/contoso/eventpipeline/internal/standins"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/docstore/docstoretest"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// testClient connects to the npm Cosmos DB stand-in and gives a database of its own that is dropped
// when the test ends.
func testClient(t *testing.T) (*Client, string) {
	t.Helper()
	endpoint, key := standins.Require(t, "STANDINS_COSMOS_ENDPOINT"), standins.Require(t, "STANDINS_COSMOS_KEY")
	c, err := NewClient(&settings.Cosmos{Endpoint: endpoint, Key: key}, ClientOptions{
		// Test only: the stand-in serves a self-signed certificate that expired in 2021.
		Transport: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}},
		Retry:     policy.RetryOptions{MaxRetries: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	db := "test-" + strings.ToLower(rand.Text()[:10])
	if err := c.EnsureContainers(context.Background(), db, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer c.Close()
		d, err := c.sdk.NewDatabase(db)
		if err == nil {
			_, err = d.Delete(context.Background(), nil)
		}
		if err != nil {
			t.Logf("drop database %s: %v", db, err)
		}
	})
	return c, db
}

func TestCollectionContract(t *testing.T) {
	c, db := testClient(t)
	var n atomic.Int32
	docstoretest.Run(t, func(t *testing.T) docstore.Collection[docstoretest.Doc] {
		ct := settings.Container{Name: fmt.Sprintf("c%d", n.Add(1)), PartitionKey: "/pk", DefaultTTLSeconds: -1}
		if err := c.EnsureContainers(context.Background(), db, []settings.Container{ct}); err != nil {
			t.Fatal(err)
		}
		return NewCollection[docstoretest.Doc](c, db, ct)
	}, docstoretest.Options{TTLEnforced: false}) // the stand-in stores "ttl" but never expires items
}

func TestEnsureContainersSetsTTLAndIsIdempotent(t *testing.T) {
	c, db := testClient(t)
	ctx := context.Background()
	cts := []settings.Container{
		{Name: "perItem", PartitionKey: "/userId", DefaultTTLSeconds: -1},
		{Name: "off", PartitionKey: "/id"},
		{Name: "hour", PartitionKey: "/pk", DefaultTTLSeconds: 3600},
	}
	for range 2 {
		if err := c.EnsureContainers(ctx, db, cts); err != nil {
			t.Fatal(err)
		}
	}
	for _, ct := range cts {
		cc, _ := c.sdk.NewContainer(db, ct.Name)
		resp, err := cc.Read(ctx, nil)
		if err != nil {
			t.Fatalf("read %s: %v", ct.Name, err)
		}
		p := resp.ContainerProperties
		if got := p.PartitionKeyDefinition.Paths; len(got) != 1 || got[0] != ct.PartitionKey {
			t.Errorf("%s: partition key paths %v, want [%s]", ct.Name, got, ct.PartitionKey)
		}
		switch {
		case ct.DefaultTTLSeconds == 0 && p.DefaultTimeToLive != nil:
			t.Errorf("%s: defaultTtl %d, want absent", ct.Name, *p.DefaultTimeToLive)
		case ct.DefaultTTLSeconds != 0 && (p.DefaultTimeToLive == nil || int(*p.DefaultTimeToLive) != ct.DefaultTTLSeconds):
			t.Errorf("%s: defaultTtl %v, want %d", ct.Name, p.DefaultTimeToLive, ct.DefaultTTLSeconds)
		}
	}
}

// The stand-in ignores TTL, so this checks what is sent: the stored item carries the rounded-up ttl.
func TestPutStoresTTL(t *testing.T) {
	c, db := testClient(t)
	ctx := context.Background()
	ct := settings.Container{Name: "recent", PartitionKey: "/userId", DefaultTTLSeconds: -1}
	if err := c.EnsureContainers(ctx, db, []settings.Container{ct}); err != nil {
		t.Fatal(err)
	}
	type recent struct {
		ID     string   `json:"id"`
		UserID string   `json:"userId"`
		Items  []string `json:"items"`
	}
	coll := NewCollection[recent](c, db, ct)
	if _, err := coll.Put(ctx, "u1", "u1", recent{ID: "u1", UserID: "u1", Items: []string{"p1"}}, docstore.PutOptions{TTL: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.Put(ctx, "u2", "u2", recent{ID: "u2", UserID: "u2"}, docstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]any{"u1": float64(2), "u2": nil} {
		resp, err := coll.container.ReadItem(ctx, azcosmos.NewPartitionKeyString(id), id, nil)
		if err != nil {
			t.Fatal(err)
		}
		var item map[string]any
		if err := json.Unmarshal(resp.Value, &item); err != nil {
			t.Fatal(err)
		}
		if item["ttl"] != want {
			t.Errorf("%s: stored ttl %v, want %v (item %s)", id, item["ttl"], want, resp.Value)
		}
	}
}

func TestPutRejectsDocumentsCosmosCannotAddress(t *testing.T) {
	c, db := testClient(t)
	ctx := context.Background()
	ct := settings.Container{Name: "things", PartitionKey: "/userId"}
	if err := c.EnsureContainers(ctx, db, []settings.Container{ct}); err != nil {
		t.Fatal(err)
	}
	type noID struct {
		Key    string `json:"key"`
		UserID string `json:"userId"`
	}
	if _, err := NewCollection[noID](c, db, ct).Put(ctx, "u", "a", noID{Key: "a", UserID: "u"}, docstore.PutOptions{}); err == nil || !strings.Contains(err.Error(), `"id" is missing`) {
		t.Errorf("Put without id: err = %v", err)
	}
	type doc struct {
		ID     string `json:"id"`
		UserID string `json:"userId"`
	}
	coll := NewCollection[doc](c, db, ct)
	if _, err := coll.Put(ctx, "u", "a", doc{ID: "b", UserID: "u"}, docstore.PutOptions{}); err == nil || !strings.Contains(err.Error(), `"id" is "b", want "a"`) {
		t.Errorf("Put with another id: err = %v", err)
	}
	if _, err := coll.Put(ctx, "u", "a", doc{ID: "a", UserID: "v"}, docstore.PutOptions{}); err == nil || !strings.Contains(err.Error(), "partition key") {
		t.Errorf("Put with another partition key: err = %v", err)
	}
	if _, _, err := coll.Get(ctx, "u", "a"); !errors.Is(err, docstore.ErrNotFound) {
		t.Errorf("a rejected Put wrote something: Get err = %v", err)
	}
}

// An unreachable account must not look like a missing document or a conflict: callers fail the
// invocation so that the host retries.
func TestUnreachableIsNeitherNotFoundNorConflict(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := NewClient(&settings.Cosmos{Endpoint: "http://" + addr + "/", Key: "dGVzdA=="},
		ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coll := NewCollection[docstoretest.Doc](c, "db", settings.Container{Name: "c", PartitionKey: "/pk"})
	_, _, err = coll.Get(ctx, "p", "a")
	if err == nil || errors.Is(err, docstore.ErrNotFound) || errors.Is(err, docstore.ErrConflict) {
		t.Fatalf("Get from unreachable account: err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), "cosmos get c/a: ") {
		t.Errorf("error does not name the operation: %v", err)
	}
}

// A List result is often followed by a conditional write, so its ETags must be the ones Get returns.
func TestListETagsMatchGet(t *testing.T) {
	c, db := testClient(t)
	ctx := context.Background()
	ct := settings.Container{Name: "jobs", PartitionKey: "/job", DefaultTTLSeconds: -1}
	if err := c.EnsureContainers(ctx, db, []settings.Container{ct}); err != nil {
		t.Fatal(err)
	}
	type state struct {
		ID  string `json:"id"`
		Job string `json:"job"`
		N   int    `json:"n"`
	}
	coll := NewCollection[state](c, db, ct)
	put, err := coll.Put(ctx, "j", "s", state{ID: "s", Job: "j", N: 1}, docstore.PutOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var listed docstore.ETag
	if err := coll.List(ctx, "j", func(id string, v state, etag docstore.ETag) error { listed = etag; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, got, _ := coll.Get(ctx, "j", "s"); listed != put || got != put {
		t.Fatalf("etags: Put %q, List %q, Get %q", put, listed, got)
	}
	if _, err := coll.Put(ctx, "j", "s", state{ID: "s", Job: "j", N: 2}, docstore.PutOptions{IfMatch: listed}); err != nil {
		t.Fatalf("replace with the listed etag: %v", err)
	}
}
