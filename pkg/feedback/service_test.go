package feedback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/publish"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// recorder is a Sender that keeps what it was given, and fails while err is set.
type recorder struct {
	mu    sync.Mutex
	calls [][]event.Event
	err   error
	// gate, when set, holds every Send until it is closed.
	gate chan struct{}
}

func (r *recorder) Send(ctx context.Context, evs []event.Event) error {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.calls = append(r.calls, append([]event.Event(nil), evs...))
	return nil
}

func (r *recorder) sent() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []event.Event
	for _, c := range r.calls {
		all = append(all, c...)
	}
	return all
}

// keys wraps the embedded collection to record write options and fail on demand.
type keys struct {
	docstore.Collection[Record]
	mu       sync.Mutex
	puts     []docstore.PutOptions
	failPut  func(r Record) error
	failRead error
}

func (k *keys) Put(ctx context.Context, pk, id string, v Record, o docstore.PutOptions) (docstore.ETag, error) {
	k.mu.Lock()
	k.puts = append(k.puts, o)
	fail := k.failPut
	k.mu.Unlock()
	if fail != nil {
		if err := fail(v); err != nil {
			return "", err
		}
	}
	return k.Collection.Put(ctx, pk, id, v, o)
}

func (k *keys) Get(ctx context.Context, pk, id string) (Record, docstore.ETag, error) {
	if k.failRead != nil {
		return Record{}, "", k.failRead
	}
	return k.Collection.Get(ctx, pk, id)
}

func newKeys(t *testing.T) *keys {
	t.Helper()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := embedded.NewCollection[Record](db, "idempotency")
	if err != nil {
		t.Fatal(err)
	}
	return &keys{Collection: c}
}

func newService(t *testing.T) (*Service, *recorder, *keys, *bytes.Buffer) {
	var logs bytes.Buffer
	rec, k := &recorder{}, newKeys(t)
	n := 0
	return &Service{Sender: rec, Keys: k, Log: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return t0 },
		NewID: func() string { n++; return fmt.Sprintf("random-%d", n) }}, rec, k, &logs
}

func product(key, productID string, rating int) Submission {
	return Submission{Key: key, Feedback: Feedback{Kind: KindProduct, ProductID: productID, Rating: &rating, Comment: "secret comment"}}
}

func TestSubmitBuildsTheEvent(t *testing.T) {
	svc, rec, _, _ := newService(t)
	s, err := DecodeJSON(mustRead(t, "product.json"), ptr("order-77-review"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Submit(context.Background(), "acme", []Submission{s})
	if err != nil {
		t.Fatal(err)
	}
	sent := rec.sent()
	if len(sent) != 1 || res.IDs[0] != EventID("acme", "order-77-review") || sent[0].ID() != res.IDs[0] {
		t.Fatalf("answer %v, sent %v", res, sent)
	}
	got, err := json.MarshalIndent(sent[0], "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden("event-product.json", t, got)
}

func golden(name string, t *testing.T, got []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(bytes.TrimSpace(want)), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestSubmitSubjects(t *testing.T) {
	tests := []struct {
		f       Feedback
		typ     string
		subject string
	}{
		{Feedback{Kind: KindProduct, ProductID: "p-1", OrderID: "o-1"}, TypeProductSubmitted, "/products/p-1"},
		{Feedback{Kind: KindCustomer, OrderID: "o-1", CustomerRef: "c-1"}, TypeCustomerSubmitted, "/orders/o-1"},
		{Feedback{Kind: KindCustomer, CustomerRef: "c-1"}, TypeCustomerSubmitted, "/customers/c-1"},
	}
	for _, tt := range tests {
		b, err := (&Submission{Feedback: tt.f}).build("acme", "id", t0)
		if err != nil {
			t.Fatal(err)
		}
		e := b.event
		if e.Type() != tt.typ || e.Subject() != tt.subject || e.Extensions()[PartitionKeyExtension] != tt.subject || e.Source() != "/partners/acme" {
			t.Errorf("%+v: type %s subject %s key %v source %s", tt.f, e.Type(), e.Subject(), e.Extensions()[PartitionKeyExtension], e.Source())
		}
		if !e.Time().Equal(t0) {
			t.Errorf("time %v, want the receive time %v when submittedAt is absent", e.Time(), t0)
		}
	}
}

func TestSubmitIsIdempotent(t *testing.T) {
	svc, rec, k, _ := newService(t)
	ctx := context.Background()
	first, err := svc.Submit(ctx, "acme", []Submission{product("k1", "p-1", 5)})
	if err != nil {
		t.Fatal(err)
	}
	again, err := svc.Submit(ctx, "acme", []Submission{product("k1", "p-1", 5)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first.IDs, again.IDs); diff != "" || again.Replayed != 1 || first.Replayed != 0 {
		t.Fatalf("replay answered %+v, first %+v (%s)", again, first, diff)
	}
	if n := len(rec.sent()); n != 1 {
		t.Fatalf("published %d events, want 1", n)
	}
	// The same key from another partner is another key.
	other, err := svc.Submit(ctx, "globex", []Submission{product("k1", "p-1", 5)})
	if err != nil || other.IDs[0] == first.IDs[0] || len(rec.sent()) != 2 {
		t.Fatalf("other partner: %+v %v, %d published", other, err, len(rec.sent()))
	}
	// Every key record lives 24 hours.
	for _, o := range k.puts {
		if o.TTL != DefaultKeyTTL {
			t.Errorf("a key record was written with TTL %v, want %v", o.TTL, DefaultKeyTTL)
		}
	}
	rec2, _, err := k.Get(ctx, "acme", first.IDs[0])
	if err != nil || rec2.State != StateDone || rec2.Key != "k1" || !rec2.AcceptedAt.Equal(t0) {
		t.Fatalf("stored answer %+v, %v", rec2, err)
	}
}

func TestSubmitKeyReusedForOtherFeedback(t *testing.T) {
	svc, rec, _, _ := newService(t)
	ctx := context.Background()
	if _, err := svc.Submit(ctx, "acme", []Submission{product("k1", "p-1", 5)}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Submit(ctx, "acme", []Submission{product("k1", "p-1", 1)})
	if !errors.Is(err, ErrKeyReused) {
		t.Fatalf("err = %v, want ErrKeyReused", err)
	}
	if n := len(rec.sent()); n != 1 {
		t.Fatalf("published %d events, want 1", n)
	}
}

func TestSubmitNotDeliveredRecordsNothing(t *testing.T) {
	svc, rec, k, _ := newService(t)
	ctx := context.Background()
	rec.err = fmt.Errorf("hub down: %w", publish.ErrNotDelivered)
	subs := []Submission{product("k1", "p-1", 5), product("k2", "p-2", 4)}
	_, err := svc.Submit(ctx, "acme", subs)
	if !errors.Is(err, publish.ErrNotDelivered) {
		t.Fatalf("err = %v, want ErrNotDelivered", err)
	}
	for _, key := range []string{"k1", "k2"} {
		if _, _, err := k.Get(ctx, "acme", EventID("acme", key)); !errors.Is(err, docstore.ErrNotFound) {
			t.Errorf("key %s: record left behind after a failed publish (%v)", key, err)
		}
	}
	rec.err = nil
	res, err := svc.Submit(ctx, "acme", subs)
	if err != nil || res.Replayed != 0 || len(rec.sent()) != 2 {
		t.Fatalf("retry: %+v %v, %d published", res, err, len(rec.sent()))
	}
}

func TestSubmitStoreDownPublishesNothing(t *testing.T) {
	svc, rec, k, _ := newService(t)
	k.failPut = func(Record) error { return errors.New("cosmos: 503") }
	if _, err := svc.Submit(context.Background(), "acme", []Submission{product("k1", "p-1", 5)}); err == nil {
		t.Fatal("Submit succeeded with the idempotency store down")
	}
	if len(rec.sent()) != 0 {
		t.Fatal("published although the key could not be reserved")
	}
}

func TestSubmitConcurrentSameKeyPublishesOnce(t *testing.T) {
	svc, rec, _, _ := newService(t)
	rec.gate = make(chan struct{})
	const n = 6
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.Submit(context.Background(), "acme", []Submission{product("k1", "p-1", 5)})
			errs <- err
		}()
	}
	// n-1 requests come back at once with "in progress"; the owner waits on the gate.
	var busy int
	for range n - 1 {
		err := <-errs
		var ip *InProgressError
		if !errors.As(err, &ip) || ip.RetryAfter <= 0 {
			t.Fatalf("concurrent request: err = %v, want *InProgressError", err)
		}
		busy++
	}
	close(rec.gate)
	wg.Wait()
	if err := <-errs; err != nil {
		t.Fatalf("owner: %v", err)
	}
	if got := len(rec.sent()); got != 1 || busy != n-1 {
		t.Fatalf("published %d events (%d busy), want 1", got, busy)
	}
}

func TestSubmitTakesOverAStaleReservation(t *testing.T) {
	svc, rec, k, _ := newService(t)
	ctx := context.Background()
	s := product("k1", "p-1", 5)
	b, err := s.build("acme", EventID("acme", "k1"), t0)
	if err != nil {
		t.Fatal(err)
	}
	stale := svc.record("acme", "k1", b, StatePending, t0)
	stale.LeaseUntil = t0.Add(-time.Second) // its request died
	if _, err := k.Collection.Put(ctx, "acme", stale.ID, stale, docstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Submit(ctx, "acme", []Submission{s})
	if err != nil || res.Replayed != 0 || len(rec.sent()) != 1 {
		t.Fatalf("takeover: %+v %v, %d published", res, err, len(rec.sent()))
	}
	// A live reservation is not taken over.
	live := stale
	live.ID = EventID("acme", "k2")
	live.Key = "k2"
	live.LeaseUntil = t0.Add(10 * time.Second)
	s2 := product("k2", "p-1", 5)
	b2, _ := s2.build("acme", live.ID, t0)
	live.Fingerprint = b2.fingerprint
	if _, err := k.Collection.Put(ctx, "acme", live.ID, live, docstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Submit(ctx, "acme", []Submission{s2})
	var ip *InProgressError
	if !errors.As(err, &ip) || ip.RetryAfter != 10*time.Second {
		t.Fatalf("live reservation: err = %v, want in progress for 10s", err)
	}
}

func TestSubmitBatchIsOneSend(t *testing.T) {
	svc, rec, _, _ := newService(t)
	ctx := context.Background()
	subs := []Submission{product("b1", "p-1", 5), product("", "p-2", 4), product("b3", "p-1", 3)}
	res, err := svc.Submit(ctx, "acme", subs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 1 || len(rec.calls[0]) != 3 {
		t.Fatalf("sends %d, want one send of 3", len(rec.calls))
	}
	want := []string{EventID("acme", "b1"), "random-1", EventID("acme", "b3")}
	if diff := cmp.Diff(want, res.IDs); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	for i, e := range rec.calls[0] {
		if e.ID() != want[i] {
			t.Errorf("event %d is %s, want %s (order must hold)", i, e.ID(), want[i])
		}
	}
	// Replaying the batch publishes only what has no answer yet: the keyless one has none.
	res, err = svc.Submit(ctx, "acme", subs)
	if err != nil || res.Replayed != 2 || len(rec.sent()) != 4 {
		t.Fatalf("replay: %+v %v, %d published", res, err, len(rec.sent()))
	}
}

func TestSubmitRefusesAnotherPartner(t *testing.T) {
	svc, rec, _, _ := newService(t)
	s := product("k1", "p-1", 5)
	s.claimed = []string{"globex"}
	if _, err := svc.Submit(context.Background(), "acme", []Submission{s}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("err = %v, want ErrForbidden", err)
	}
	s.claimed = []string{"ACME"}
	if _, err := svc.Submit(context.Background(), "acme", []Submission{s}); err != nil {
		t.Fatalf("the caller named in another case: %v", err)
	}
	if len(rec.sent()) != 1 {
		t.Fatalf("published %d", len(rec.sent()))
	}
}

func TestSubmitAnswersWhenTheRecordFails(t *testing.T) {
	svc, rec, k, logs := newService(t)
	k.failPut = func(r Record) error {
		if r.State == StateDone {
			return errors.New("cosmos: 503")
		}
		return nil
	}
	res, err := svc.Submit(context.Background(), "acme", []Submission{product("k1", "p-1", 5)})
	if err != nil || len(res.IDs) != 1 || len(rec.sent()) != 1 {
		t.Fatalf("published feedback must be accepted: %+v %v", res, err)
	}
	if !bytes.Contains(logs.Bytes(), []byte("idempotency answer not recorded")) {
		t.Errorf("no warning logged: %s", logs)
	}
	if bytes.Contains(logs.Bytes(), []byte("secret comment")) {
		t.Errorf("the comment was logged: %s", logs)
	}
}
