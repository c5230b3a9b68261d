package catalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/catalog"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakePublisher behaves like publish.Publisher: it fails while down before the last attempt, and on
// the last attempt parks what it cannot send and succeeds (unless the outbox is down too).
type fakePublisher struct {
	mu         sync.Mutex
	calls      [][]event.Event
	parked     []event.Event
	down       bool
	outboxDown bool
}

var errDown = errors.New("503 service unavailable")

func (f *fakePublisher) Publish(ctx context.Context, evs []event.Event, lastAttempt bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.down {
		f.calls = append(f.calls, slices.Clone(evs))
		return nil
	}
	if !lastAttempt || f.outboxDown {
		return errDown
	}
	f.parked = append(f.parked, evs...)
	return nil
}

func (f *fakePublisher) sent() []event.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []event.Event
	for _, c := range f.calls {
		out = append(out, c...)
	}
	return out
}

func (f *fakePublisher) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.parked = nil, nil
}

// flakyStore wraps a StateStore and fails reads or writes on demand.
type flakyStore struct {
	catalog.StateStore
	mu               sync.Mutex
	getDown, putDown bool
	puts             int
	// beforePut runs before each write (to simulate a concurrent writer).
	beforePut func()
}

func (s *flakyStore) Get(ctx context.Context, pk, id string) (catalog.State, docstore.ETag, error) {
	if s.getDown {
		return catalog.State{}, "", errDown
	}
	return s.StateStore.Get(ctx, pk, id)
}

func (s *flakyStore) Put(ctx context.Context, pk, id string, v catalog.State, o docstore.PutOptions) (docstore.ETag, error) {
	s.mu.Lock()
	f := s.beforePut
	s.beforePut = nil
	down := s.putDown
	if !down {
		s.puts++
	}
	s.mu.Unlock()
	if f != nil {
		f()
	}
	if down {
		return "", errDown
	}
	return s.StateStore.Put(ctx, pk, id, v, o)
}

type fixture struct {
	svc   *catalog.Service
	pub   *fakePublisher
	store *flakyStore
	raw   *embedded.Collection[catalog.State]
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	coll, err := embedded.NewCollection[catalog.State](db, "publishedState")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{pub: &fakePublisher{}, store: &flakyStore{StateStore: coll}, raw: coll}
	f.svc = &catalog.Service{State: f.store, Publisher: f.pub, Concurrency: 2, Now: func() time.Time { return t0 }}
	return f
}

// version numbers documents the way Cosmos DB does: a new _etag and a higher _lsn per write.
func version(n int) map[string]any {
	return map[string]any{"_etag": fmt.Sprintf(`"etag-%d"`, n), "_lsn": n, "_ts": 1764072000 + n}
}

func product(t testing.TB, id string, n int, set map[string]any) catalog.Document {
	t.Helper()
	m := map[string]any{"id": id, "name": "Product " + id, "category": "tools", "price": 10.0, "currency": "EUR", "stock": 5}
	for k, v := range version(n) {
		m[k] = v
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	d, err := catalog.DecodeChange(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func types(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Subject() + " " + e.Type()
	}
	return out
}

func ids(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID()
	}
	return out
}

func (f *fixture) apply(t *testing.T, last bool, docs ...catalog.Document) catalog.Stats {
	t.Helper()
	st, err := f.svc.Apply(context.Background(), docs, last)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestApplyCreatedThenUpdated(t *testing.T) {
	f := newFixture(t)
	f.apply(t, false, product(t, "p-1", 1, nil), product(t, "p-2", 2, nil))
	want := []string{"/products/tools/p-1 com.contoso.product.created", "/products/tools/p-2 com.contoso.product.created"}
	if diff := cmp.Diff(want, types(f.pub.sent())); diff != "" {
		t.Fatalf("first batch (-want +got):\n%s", diff)
	}
	f.pub.reset()
	st := f.apply(t, false, product(t, "p-1", 3, map[string]any{"price": 8.5}), product(t, "p-3", 4, nil))
	want = []string{
		"/products/tools/p-1 com.contoso.product.updated",
		"/products/tools/p-1 com.contoso.product.price.changed",
		"/products/tools/p-3 com.contoso.product.created",
	}
	if diff := cmp.Diff(want, types(f.pub.sent())); diff != "" {
		t.Fatalf("second batch (-want +got):\n%s", diff)
	}
	if st.Requests != 1 || st.Writes != 2 || st.Events != 3 {
		t.Fatalf("stats %+v", st)
	}
	s, _, err := f.raw.Get(context.Background(), "p-1", "p-1")
	if err != nil || s.Product.Price != 8.5 || s.Version.LSN != 3 {
		t.Fatalf("state %+v, %v", s, err)
	}
}

func TestApplyReplayPublishesNothing(t *testing.T) {
	f := newFixture(t)
	batch := []catalog.Document{product(t, "p-1", 1, nil), product(t, "p-1", 2, map[string]any{"stock": 0}), product(t, "p-2", 3, nil)}
	f.apply(t, false, batch...)
	first := f.pub.sent()
	if len(first) != 4 {
		t.Fatalf("first delivery sent %v", types(first))
	}
	f.pub.reset()
	puts := f.store.puts
	st := f.apply(t, false, batch...)
	if got := f.pub.sent(); len(got) != 0 {
		t.Fatalf("redelivery published %v", types(got))
	}
	if st.Stale != 3 || st.Requests != 0 || f.store.puts != puts {
		t.Fatalf("redelivery: stats %+v, %d writes", st, f.store.puts-puts)
	}
	// An older version arriving late (a replayed dead letter) is skipped too.
	st = f.apply(t, false, product(t, "p-1", 1, map[string]any{"name": "old name"}))
	if st.Stale != 1 || len(f.pub.sent()) != 0 {
		t.Fatalf("older version: stats %+v, sent %v", st, types(f.pub.sent()))
	}
}

func TestApplyRetryCarriesSameIDs(t *testing.T) {
	f := newFixture(t)
	f.apply(t, false, product(t, "p-1", 1, nil))
	f.pub.reset()
	batch := []catalog.Document{product(t, "p-1", 2, map[string]any{"price": 1.0, "stock": 0})}

	// The state store fails after publishing: the invocation fails, the state stays, and the retry
	// publishes the very same events again.
	f.store.putDown = true
	if _, err := f.svc.Apply(context.Background(), batch, false); !errors.Is(err, errDown) {
		t.Fatalf("err = %v, want the store error", err)
	}
	firstIDs := ids(f.pub.sent())
	if len(firstIDs) != 3 {
		t.Fatalf("sent %v", types(f.pub.sent()))
	}
	f.store.putDown = false
	f.pub.reset()
	f.apply(t, false, batch...)
	if diff := cmp.Diff(firstIDs, ids(f.pub.sent())); diff != "" {
		t.Fatalf("retry ids differ (-first +retry):\n%s", diff)
	}
}

func TestApplyPublishFailure(t *testing.T) {
	f := newFixture(t)
	f.apply(t, false, product(t, "p-1", 1, nil))
	f.pub.reset()
	batch := []catalog.Document{product(t, "p-1", 2, map[string]any{"name": "New"})}

	f.pub.down = true
	puts := f.store.puts
	if _, err := f.svc.Apply(context.Background(), batch, false); !errors.Is(err, errDown) {
		t.Fatalf("before the last retry: err = %v, want the publish error", err)
	}
	if f.store.puts != puts {
		t.Fatal("state written although nothing was published")
	}
	// Last retry: the publisher parks the events in its outbox; the state moves on.
	st := f.apply(t, true, batch...)
	if len(f.pub.parked) != 1 || f.pub.parked[0].Type() != catalog.TypeUpdated || st.Writes != 1 {
		t.Fatalf("last retry: parked %v, stats %+v", types(f.pub.parked), st)
	}
	parkedID := f.pub.parked[0].ID()
	// The change feed delivers the batch again later: nothing new is published.
	f.pub.down = false
	f.apply(t, false, batch...)
	if len(f.pub.sent()) != 0 {
		t.Fatalf("published %v after parking", types(f.pub.sent()))
	}
	if parkedID != catalog.EventID("p-1", batch[0].Version, catalog.TypeUpdated) {
		t.Fatal("parked event id is not the deterministic one")
	}
	// The outbox itself down on the last retry: the error reaches the caller (which parks the docs).
	f.pub.down, f.pub.outboxDown = true, true
	if _, err := f.svc.Apply(context.Background(), []catalog.Document{product(t, "p-1", 3, map[string]any{"name": "Newer"})}, true); err == nil {
		t.Fatal("outbox failure was swallowed")
	}
}

func TestApplySoftDeleteAndRestore(t *testing.T) {
	f := newFixture(t)
	f.apply(t, false, product(t, "p-1", 1, map[string]any{"category": "garden"}))
	f.pub.reset()
	tombstone := product(t, "p-1", 2, map[string]any{"isDeleted": true, "ttl": 3600, "name": nil, "category": nil, "price": nil})
	f.apply(t, false, tombstone)
	sent := f.pub.sent()
	if diff := cmp.Diff([]string{"/products/garden/p-1 com.contoso.product.deleted"}, types(sent)); diff != "" {
		t.Fatalf("delete (-want +got):\n%s", diff)
	}
	var data catalog.EventData
	if err := json.Unmarshal(sent[0].Data(), &data); err != nil || data.Name != "Product p-1" || data.Category != "garden" {
		t.Fatalf("deleted event data %s (%v): want the last published product", sent[0].Data(), err)
	}
	f.pub.reset()
	f.apply(t, false, product(t, "p-1", 3, map[string]any{"isDeleted": true, "ttl": 7200}))
	if len(f.pub.sent()) != 0 {
		t.Fatalf("second delete published %v", types(f.pub.sent()))
	}
	f.apply(t, false, product(t, "p-1", 4, map[string]any{"isDeleted": false}))
	if diff := cmp.Diff([]string{"/products/tools/p-1 com.contoso.product.created"}, types(f.pub.sent())); diff != "" {
		t.Fatalf("restore (-want +got):\n%s", diff)
	}
	// A product deleted before partners ever saw it publishes nothing and stores nothing.
	f.pub.reset()
	puts := f.store.puts
	f.apply(t, false, product(t, "p-9", 5, map[string]any{"isDeleted": true}))
	if len(f.pub.sent()) != 0 || f.store.puts != puts {
		t.Fatal("unknown deleted product published or stored something")
	}
}

func TestApplyQuietChangesWriteNothing(t *testing.T) {
	f := newFixture(t)
	f.apply(t, false, product(t, "p-1", 1, nil))
	f.pub.reset()
	puts := f.store.puts
	st := f.apply(t, false,
		product(t, "p-1", 2, map[string]any{"stock": 3}),
		product(t, "p-1", 3, map[string]any{"stock": 1, "supplier": "acme", "ttl": 100}),
	)
	if len(f.pub.sent()) != 0 || f.store.puts != puts || st.Unchanged != 2 {
		t.Fatalf("quiet changes: sent %v, %d writes, stats %+v", types(f.pub.sent()), f.store.puts-puts, st)
	}
	// The next visible change is relative to what partners last saw (stock 5).
	f.apply(t, false, product(t, "p-1", 4, map[string]any{"stock": 0}))
	sent := f.pub.sent()
	var data catalog.EventData
	if err := json.Unmarshal(sent[len(sent)-1].Data(), &data); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"stock": 5.0, "inStock": true}, data.Previous); diff != "" {
		t.Fatalf("previous (-want +got):\n%s", diff)
	}
}

func TestApplyStoreReadFailure(t *testing.T) {
	f := newFixture(t)
	f.store.getDown = true
	if _, err := f.svc.Apply(context.Background(), []catalog.Document{product(t, "p-1", 1, nil)}, true); !errors.Is(err, errDown) {
		t.Fatalf("err = %v", err)
	}
	if len(f.pub.sent()) != 0 {
		t.Fatal("published without knowing the state")
	}
}

func TestApplyConcurrentStateChange(t *testing.T) {
	ctx := context.Background()
	t.Run("a newer state written meanwhile is kept", func(t *testing.T) {
		f := newFixture(t)
		f.apply(t, false, product(t, "p-1", 1, nil))
		f.store.beforePut = func() {
			newer := catalog.State{ID: "p-1", ProductID: "p-1", Product: catalog.Product{ID: "p-1", Name: "from elsewhere"}, Version: catalog.Version{ETag: "x", LSN: 9}}
			if _, err := f.raw.Put(ctx, "p-1", "p-1", newer, docstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		st := f.apply(t, false, product(t, "p-1", 2, map[string]any{"name": "mine"}))
		s, _, _ := f.raw.Get(ctx, "p-1", "p-1")
		if st.Conflicts != 1 || s.Version.LSN != 9 {
			t.Fatalf("stats %+v, stored %+v", st, s)
		}
	})
	t.Run("an older state written meanwhile is replaced", func(t *testing.T) {
		f := newFixture(t)
		f.apply(t, false, product(t, "p-1", 5, nil))
		f.store.beforePut = func() {
			older := catalog.State{ID: "p-1", ProductID: "p-1", Product: catalog.Product{ID: "p-1"}, Version: catalog.Version{ETag: "x", LSN: 3}}
			if _, err := f.raw.Put(ctx, "p-1", "p-1", older, docstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		st := f.apply(t, false, product(t, "p-1", 6, map[string]any{"name": "mine"}))
		s, _, _ := f.raw.Get(ctx, "p-1", "p-1")
		if st.Conflicts != 1 || st.Writes != 1 || s.Version.LSN != 6 || s.Product.Name != "mine" {
			t.Fatalf("stats %+v, stored %+v", st, s)
		}
	})
}

func TestApplyChunksWithinLimits(t *testing.T) {
	f := newFixture(t)
	var batch []catalog.Document
	for i := range 10 {
		batch = append(batch, product(t, fmt.Sprintf("p-%02d", i), i+1, nil))
	}
	f.apply(t, false, batch...)
	f.pub.reset()
	// Every product changes price and sells out: three events each, 30 events in all.
	batch = batch[:0]
	for i := range 10 {
		batch = append(batch, product(t, fmt.Sprintf("p-%02d", i), 100+i, map[string]any{"price": 1.0, "stock": 0}))
	}
	f.svc.Limits = catalog.Limits{MaxEvents: 7, MaxBytes: 1 << 20}
	st := f.apply(t, false, batch...)
	if st.Events != 30 || st.Requests != 5 {
		t.Fatalf("stats %+v: want 30 events in 5 requests of two products each", st)
	}
	for i, call := range f.pub.calls {
		if len(call) > 7 {
			t.Fatalf("call %d has %d events", i, len(call))
		}
		// A product's events are never split across calls.
		if call[0].Type() != catalog.TypeUpdated || call[len(call)-1].Type() != catalog.TypeAvailabilityChanged {
			t.Fatalf("call %d splits a product: %v", i, types(call))
		}
	}
	if got := types(f.pub.sent()); got[0] != "/products/tools/p-00 com.contoso.product.updated" || got[29] != "/products/tools/p-09 com.contoso.product.availability.changed" {
		t.Fatalf("order lost: %v", got)
	}
	// The size limit too.
	f.pub.reset()
	batch = batch[:0]
	for i := range 10 {
		batch = append(batch, product(t, fmt.Sprintf("p-%02d", i), 200+i, map[string]any{"name": "Renamed"}))
	}
	size := catalog.EstimateSize(&event.Event{})
	f.svc.Limits = catalog.Limits{MaxEvents: 100, MaxBytes: 3 * (size + 600)}
	st = f.apply(t, false, batch...)
	if st.Requests < 4 {
		t.Fatalf("size limit ignored: %+v", st)
	}
	for i, call := range f.pub.calls {
		total := 2
		for j := range call {
			total += catalog.EstimateSize(&call[j])
		}
		if total > f.svc.Limits.MaxBytes {
			t.Fatalf("call %d is %d bytes > %d", i, total, f.svc.Limits.MaxBytes)
		}
	}
}

func TestEstimateSizeBoundsEncoding(t *testing.T) {
	c := catalog.Diff(&catalog.State{Product: base}, &catalog.Document{Product: change(func(p *catalog.Product) {
		p.Name, p.Description, p.Stock, p.Price = `Quote " and \ backslash <tag> & more`, "é\n\t\"", 0, 3
	})})
	evs, err := catalog.Events(&c, catalog.Version{ETag: `"q\"uote"`, LSN: 1, TS: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		b, err := json.Marshal(evs[i])
		if err != nil {
			t.Fatal(err)
		}
		if est := catalog.EstimateSize(&evs[i]); est < len(b)+1 {
			t.Fatalf("estimate %d < encoded %d (+1 comma)", est, len(b))
		}
	}
}

func TestSeed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.apply(t, false, product(t, "p-live", 50, map[string]any{"name": "published by the change feed"}))
	f.pub.reset()
	docs := []catalog.Document{
		product(t, "p-1", 1, nil),
		product(t, "p-2", 2, map[string]any{"isDeleted": true}),
		product(t, "p-live", 40, map[string]any{"name": "older snapshot"}),
	}
	st, err := f.svc.Seed(ctx, docs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(catalog.SeedStats{Documents: 3, Recorded: 1, Existing: 1, Deleted: 1}, st); diff != "" {
		t.Fatalf("seed stats (-want +got):\n%s", diff)
	}
	if len(f.pub.sent()) != 0 {
		t.Fatal("seeding published events")
	}
	s, _, _ := f.raw.Get(ctx, "p-live", "p-live")
	if s.Product.Name != "published by the change feed" {
		t.Fatalf("seed overwrote a published state: %+v", s)
	}
	// After seeding, the first change of a seeded product is an update, not a creation.
	f.apply(t, false, product(t, "p-1", 2, map[string]any{"price": 12.0}))
	want := []string{"/products/tools/p-1 com.contoso.product.updated", "/products/tools/p-1 com.contoso.product.price.changed"}
	if diff := cmp.Diff(want, types(f.pub.sent())); diff != "" {
		t.Fatalf("after seed (-want +got):\n%s", diff)
	}
	// The seeded version itself, redelivered, publishes nothing.
	f.pub.reset()
	f.apply(t, false, product(t, "p-1", 1, nil))
	if len(f.pub.sent()) != 0 {
		t.Fatalf("seeded version published %v", types(f.pub.sent()))
	}
	// Seeding again is harmless.
	if st, err := f.svc.Seed(ctx, docs[:1]); err != nil || st.Existing != 1 {
		t.Fatalf("second seed: %+v, %v", st, err)
	}
}

func TestDecodeBatchDeadLettersInvalid(t *testing.T) {
	raws := []json.RawMessage{
		json.RawMessage(hammer),
		json.RawMessage(`{"id":"p-bad","name":"x","category":"tools","price":"free","currency":"EUR","stock":1,"_lsn":9,"_etag":"\"e\"","_ts":5}`),
		json.RawMessage(`"just a string"`),
	}
	src := catalog.Source{Function: "ProductChanges", Name: "cosmos/contoso/products", InvocationID: "inv-1"}
	d := catalog.DecodeBatch(src, raws, t0)
	if len(d.Docs) != 1 || d.Docs[0].Product.ID != "p-100" {
		t.Fatalf("docs %+v", d.Docs)
	}
	if len(d.Poison) != 2 {
		t.Fatalf("poison %+v", d.Poison)
	}
	p := d.Poison[0]
	if p.Kind != "poison" || p.Partition != "p-bad" || p.SequenceNumber != 9 || p.Function != "ProductChanges" ||
		p.Reason != `invalid product document "p-bad": price: must be a number, got a string` || p.Body != string(raws[1]) {
		t.Fatalf("record %+v", p)
	}
	if q := d.Poison[1]; q.SequenceNumber != -1 || q.Reason != "invalid product document: document is not a JSON object" {
		t.Fatalf("record %+v", q)
	}
	// The same document dead-lettered again gets the same record id.
	if again := catalog.DecodeBatch(src, raws, t0.Add(time.Hour)); again.Poison[0].ID != p.ID || again.Poison[1].ID != d.Poison[1].ID {
		t.Fatal("record ids are not stable")
	}
}
