package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/catalog"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

// productPublisher behaves like publish.Publisher for ProductEventsTopic: while down it fails
// before the last attempt and parks on the last one.
type productPublisher struct {
	mu     sync.Mutex
	sent   []event.Event
	calls  int
	parked []event.Event
	down   bool
}

func (p *productPublisher) Publish(ctx context.Context, evs []event.Event, lastAttempt bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		if !lastAttempt {
			return fmt.Errorf("publish ProductEventsTopic: %w", errDown)
		}
		p.parked = append(p.parked, evs...)
		return nil
	}
	p.calls++
	p.sent = append(p.sent, evs...)
	return nil
}

func (p *productPublisher) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.sent))
	for i, e := range p.sent {
		out[i] = e.Subject() + " " + e.Type()
	}
	p.sent = nil
	return out
}

// downStates fails every state-store call while down.
type downStates struct {
	catalog.StateStore
	down bool
}

func (s *downStates) Get(ctx context.Context, pk, id string) (catalog.State, docstore.ETag, error) {
	if s.down {
		return catalog.State{}, "", errDown
	}
	return s.StateStore.Get(ctx, pk, id)
}

func (s *downStates) Put(ctx context.Context, pk, id string, v catalog.State, o docstore.PutOptions) (docstore.ETag, error) {
	if s.down {
		return "", errDown
	}
	return s.StateStore.Put(ctx, pk, id, v, o)
}

type productEnv struct {
	t      *testing.T
	host   *hostsim.Client
	pub    *productPublisher
	states *downStates
	dead   *deadletter.Docs
	deps   handlers.Deps
}

func newProductEnv(t *testing.T) *productEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	coll, err := embedded.NewCollection[catalog.State](db, "publishedState")
	if err != nil {
		t.Fatal(err)
	}
	e := &productEnv{t: t, pub: &productPublisher{}, states: &downStates{StateStore: coll}, dead: deadlettertest.Local(t, handlers.Functions()...)}
	e.deps = handlers.Deps{
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Products:    &catalog.Service{State: e.states, Publisher: e.pub, Concurrency: 1, Now: func() time.Time { return t0 }},
		DeadLetters: e.dead,
		Now:         func() time.Time { return t0 },
	}
	srv := httptest.NewServer(handlers.New(e.deps))
	t.Cleanup(srv.Close)
	e.host = &hostsim.Client{BaseURL: srv.URL}
	return e
}

// doc renders a product document as the change feed delivers it (system fields included).
func doc(id string, version int, fields string) json.RawMessage {
	base := fmt.Sprintf(`"id":%q,"name":"Product %s","category":"tools","price":10,"currency":"EUR","stock":5`, id, id)
	if fields != "" {
		base = fields
	}
	return json.RawMessage(fmt.Sprintf(`{%s,"supplier":"internal","_rid":"rid-%s","_self":"dbs/x/colls/y/docs/%s/","_etag":"\"etag-%s-%d\"","_attachments":"attachments/","_ts":%d,"_lsn":%d}`,
		base, id, id, id, version, 1764072000+version, version))
}

func (e *productEnv) invoke(retry *protocol.RetryContext, docs ...json.RawMessage) *hostsim.Result {
	e.t.Helper()
	res, err := e.host.Invoke(context.Background(), handlers.FnProductChanges, hostsim.CosmosChanges(handlers.FnProductChanges, "documents", docs, retry))
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.HasPrefix(res.ContentType, "application/json") {
		e.t.Fatalf("reply content type %q", res.ContentType)
	}
	return res
}

func (e *productEnv) records(kind string) []deadletter.Record {
	e.t.Helper()
	var out []deadletter.Record
	if err := e.dead.List(context.Background(), handlers.FnProductChanges, func(r deadletter.Record) error {
		if r.Kind == kind {
			out = append(out, r)
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

var firstTry = &protocol.RetryContext{RetryCount: 0, MaxRetryCount: 5}
var lastTry = &protocol.RetryContext{RetryCount: 5, MaxRetryCount: 5}

func TestProductChanges(t *testing.T) {
	e := newProductEnv(t)
	bad := json.RawMessage(`{"id":"p-bad","name":"Broken","category":"tools","price":"12,50","currency":"EUR","stock":1,"_etag":"\"x\"","_lsn":3,"_ts":3}`)
	batch := []json.RawMessage{doc("p-1", 1, ""), bad, doc("p-2", 2, "")}
	res := e.invoke(firstTry, batch...)
	if res.Status != 200 {
		t.Fatalf("status %d: %s", res.Status, res.Raw)
	}
	want := []string{"/products/tools/p-1 com.contoso.product.created", "/products/tools/p-2 com.contoso.product.created"}
	if diff := cmp.Diff(want, e.pub.take()); diff != "" {
		t.Fatalf("published (-want +got):\n%s", diff)
	}
	poison := e.records(deadletter.KindPoison)
	if len(poison) != 1 || poison[0].Partition != "p-bad" || poison[0].Reason != `invalid product document "p-bad": price: must be a number, got a string` {
		t.Fatalf("dead letters %+v", poison)
	}
	if !slices.ContainsFunc(res.Response.Logs, func(l string) bool { return strings.Contains(l, "product changes applied") }) {
		t.Fatalf("logs %v", res.Response.Logs)
	}

	// The change feed delivers the same batch again: nothing new is published.
	if res := e.invoke(firstTry, batch...); res.Status != 200 {
		t.Fatalf("redelivery status %d", res.Status)
	}
	if got := e.pub.take(); len(got) != 0 {
		t.Fatalf("redelivery published %v", got)
	}
	if n := len(e.records(deadletter.KindPoison)); n != 1 {
		t.Fatalf("redelivery added dead letters: %d", n)
	}

	// Updates, a sold-out product and a soft delete in one batch.
	res = e.invoke(firstTry,
		doc("p-1", 4, `"id":"p-1","name":"Product p-1","category":"tools","price":8,"currency":"EUR","stock":0`),
		doc("p-2", 5, `"id":"p-2","isDeleted":true,"ttl":3600`),
		doc("p-3", 6, `"id":"p-3","name":"Quiet","category":"garden","price":1,"currency":"USD","stock":3`),
		doc("p-3", 7, `"id":"p-3","name":"Quiet","category":"garden","price":1,"currency":"USD","stock":2`),
	)
	if res.Status != 200 {
		t.Fatalf("status %d: %s", res.Status, res.Raw)
	}
	want = []string{
		"/products/tools/p-1 com.contoso.product.updated",
		"/products/tools/p-1 com.contoso.product.price.changed",
		"/products/tools/p-1 com.contoso.product.availability.changed",
		"/products/tools/p-2 com.contoso.product.deleted",
		"/products/garden/p-3 com.contoso.product.created",
	}
	if diff := cmp.Diff(want, e.pub.take()); diff != "" {
		t.Fatalf("published (-want +got):\n%s", diff)
	}
}

func TestProductChangesTransientFailures(t *testing.T) {
	e := newProductEnv(t)
	e.invoke(firstTry, doc("p-1", 1, ""))
	e.pub.take()
	change := doc("p-1", 2, `"id":"p-1","name":"Renamed","category":"tools","price":10,"currency":"EUR","stock":5`)

	// Event Grid down before the last retry: the invocation fails for the retry policy.
	e.pub.down = true
	if res := e.invoke(firstTry, change); res.Status != 500 {
		t.Fatalf("status %d, want 500 before the last retry", res.Status)
	}
	// On the last retry the publisher parks the events and the invocation succeeds.
	if res := e.invoke(lastTry, change); res.Status != 200 {
		t.Fatalf("last retry status %d: %s", res.Status, res.Raw)
	}
	if len(e.pub.parked) != 1 || e.pub.parked[0].Type() != catalog.TypeUpdated {
		t.Fatalf("parked %v", e.pub.parked)
	}
	e.pub.down = false

	// The state store down on the last retry: the documents are parked in the dead-letter store.
	change2 := doc("p-1", 3, `"id":"p-1","name":"Renamed again","category":"tools","price":10,"currency":"EUR","stock":5`)
	e.states.down = true
	if res := e.invoke(firstTry, change2); res.Status != 500 {
		t.Fatalf("status %d, want 500 before the last retry", res.Status)
	}
	if res := e.invoke(lastTry, change2); res.Status != 200 {
		t.Fatalf("last retry status %d: %s", res.Status, res.Raw)
	}
	parked := e.records(deadletter.KindParked)
	if len(parked) != 1 || parked[0].Partition != "p-1" || parked[0].SequenceNumber != 3 || !strings.Contains(parked[0].Reason, "503") {
		t.Fatalf("parked records %+v", parked)
	}
	if got := e.pub.take(); len(got) != 0 {
		t.Fatalf("published %v without the state", got)
	}

	// ReplayDeadLetters while the store is still down keeps the record; once it is back, replays it.
	if _, err := e.deps.Replay(context.Background(), handlers.FnProductChanges, false); err == nil {
		t.Fatal("replay with the store down succeeded")
	}
	e.states.down = false
	st, err := e.deps.Replay(context.Background(), handlers.FnProductChanges, false)
	if err != nil || st.Replayed != 1 {
		t.Fatalf("replay: %+v, %v", st, err)
	}
	if diff := cmp.Diff([]string{"/products/tools/p-1 com.contoso.product.updated"}, e.pub.take()); diff != "" {
		t.Fatalf("replay published (-want +got):\n%s", diff)
	}
	if len(e.records(deadletter.KindParked)) != 0 {
		t.Fatal("replayed record kept")
	}
}

func TestProductChangesUndecodableBatch(t *testing.T) {
	e := newProductEnv(t)
	body := []byte(`{"Data":{"documents":"\"not an array\""},"Metadata":{}}`)
	res, err := e.host.Invoke(context.Background(), handlers.FnProductChanges, body)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 {
		t.Fatalf("status %d: %s", res.Status, res.Raw)
	}
	recs := e.records(deadletter.KindPoison)
	if len(recs) != 1 || !strings.Contains(recs[0].Reason, "undecodable batch") {
		t.Fatalf("records %+v", recs)
	}
}

func TestProductChangesNotConfigured(t *testing.T) {
	h := handlers.New(handlers.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := &hostsim.Client{BaseURL: srv.URL}
	res, err := c.Invoke(context.Background(), handlers.FnProductChanges, hostsim.CosmosChanges(handlers.FnProductChanges, "documents", []json.RawMessage{doc("p-1", 1, "")}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 500 || !strings.HasPrefix(res.ContentType, "application/json") {
		t.Fatalf("status %d %s: %s", res.Status, res.ContentType, res.Raw)
	}
}

// TestProductChangesDocumentedEnvelope posts the envelope docs/product-events.md uses for a local
// run, so the example keeps working.
func TestProductChangesDocumentedEnvelope(t *testing.T) {
	e := newProductEnv(t)
	body, err := os.ReadFile("../docs/examples/product-changes.envelope.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.host.Invoke(context.Background(), handlers.FnProductChanges, body)
	if err != nil || res.Status != 200 {
		t.Fatalf("%v %+v", err, res)
	}
	want := []string{"/products/tools/p-100 com.contoso.product.created", "/products/tools/p-101 com.contoso.product.created"}
	if diff := cmp.Diff(want, e.pub.take()); diff != "" {
		t.Fatalf("published (-want +got):\n%s", diff)
	}
	if recs := e.records(deadletter.KindPoison); len(recs) != 1 || recs[0].Partition != "p-102" {
		t.Fatalf("dead letters %+v", recs)
	}
}
