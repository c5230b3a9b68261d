package publish_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/internal/standins"
	"github.com/contoso/eventpipeline/pkg/azure/cosmos"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/settings"
)

func TestOutboxContractEmbedded(t *testing.T) {
	runOutboxContract(t, func(t *testing.T) docstore.Collection[publish.ParkedEvent] {
		db, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		c, err := embedded.NewCollection[publish.ParkedEvent](db, settings.ContainerOutbox.Name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

// TestOutboxContractCosmos runs the same contract on the Cosmos DB adapter against the npm stand-in
// (STANDINS_COSMOS_*; skipped when unset, failing when CI=true).
func TestOutboxContractCosmos(t *testing.T) {
	endpoint, key := standins.Require(t, "STANDINS_COSMOS_ENDPOINT"), standins.Require(t, "STANDINS_COSMOS_KEY")
	c, err := cosmos.NewClient(&settings.Cosmos{Endpoint: endpoint, Key: key}, cosmos.ClientOptions{
		// Test only: the stand-in serves a self-signed certificate that expired in 2021.
		Transport: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}},
		Retry:     policy.RetryOptions{MaxRetries: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// The stand-in is in memory and empty at every start; a database per run keeps runs apart.
	db := "test-outbox-" + strings.ToLower(rand.Text()[:8])
	var n atomic.Int32
	runOutboxContract(t, func(t *testing.T) docstore.Collection[publish.ParkedEvent] {
		ct := settings.ContainerOutbox
		ct.Name = fmt.Sprintf("outbox%d", n.Add(1))
		if err := c.EnsureContainers(context.Background(), db, []settings.Container{ct}); err != nil {
			t.Fatal(err)
		}
		return cosmos.NewCollection[publish.ParkedEvent](c, db, ct)
	})
}

// runOutboxContract is what DocOutbox must do on any docstore.Collection: newColl returns an empty
// collection.
func runOutboxContract(t *testing.T, newColl func(t *testing.T) docstore.Collection[publish.ParkedEvent]) {
	ctx := context.Background()
	setup := func(t *testing.T) (*publish.DocOutbox, *clock, docstore.Collection[publish.ParkedEvent]) {
		docs := newColl(t)
		o := publish.NewOutbox(docs)
		clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
		o.Now = clk.Now
		return o, clk, docs
	}
	list := func(t *testing.T, docs docstore.Collection[publish.ParkedEvent], dest string) map[string]publish.ParkedEvent {
		t.Helper()
		out := map[string]publish.ParkedEvent{}
		if err := docs.List(ctx, dest, func(id string, d publish.ParkedEvent, _ docstore.ETag) error {
			out[id] = d
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}

	t.Run("ParkIsIdempotentByEventID", func(t *testing.T) {
		o, clk, docs := setup(t)
		evs := newEvents(t, "p", 3)
		if err := o.Park(ctx, "T", evs, "503 first"); err != nil {
			t.Fatal(err)
		}
		first := list(t, docs, "T")
		clk.Advance(time.Minute)
		if err := o.Park(ctx, "T", evs[1:], "503 again"); err != nil {
			t.Fatal(err)
		}
		again := list(t, docs, "T")
		if len(again) != 3 {
			t.Fatalf("%d documents after parking 3 events then 2 of them again, want 3", len(again))
		}
		for id, d := range first {
			g := again[id]
			if !g.ParkedAt.Equal(d.ParkedAt) || g.Seq != d.Seq || g.Reason != d.Reason {
				t.Errorf("%s: re-parking moved it: %v/%d/%q -> %v/%d/%q", id, d.ParkedAt, d.Seq, d.Reason, g.ParkedAt, g.Seq, g.Reason)
			}
			if d.Kind != publish.KindParked || d.Topic != "T" || d.EventID != id || d.Source != "/contoso/catalog" || d.Attempts != 1 {
				t.Errorf("%s: document %+v", id, d)
			}
		}
	})

	t.Run("RelaySendsOldestFirstAndDeletesDelivered", func(t *testing.T) {
		o, clk, docs := setup(t)
		if err := o.Park(ctx, "T", newEvents(t, "b", 3), "down"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		if err := o.Park(ctx, "T", newEvents(t, "a", 2), "down"); err != nil {
			t.Fatal(err)
		}
		if err := o.Park(ctx, "Other", newEvents(t, "z", 1), "down"); err != nil {
			t.Fatal(err)
		}
		s := &scriptedSender{}
		st, err := o.Relay(ctx, "T", s)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([][]string{{"b0", "b1", "b2", "a0", "a1"}}, s.sent()); diff != "" {
			t.Errorf("relayed (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(publish.RelayStats{Delivered: 5}, st); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
		if n := len(list(t, docs, "T")); n != 0 {
			t.Errorf("%d documents left after delivery, want 0", n)
		}
		if n := len(list(t, docs, "Other")); n != 1 {
			t.Errorf("another destination's outbox was touched: %d documents, want 1", n)
		}
	})

	t.Run("RelayedEventsAreTheParkedEvents", func(t *testing.T) {
		o, _, _ := setup(t)
		in := newEvents(t, "r", 2)
		in[1].SetExtension("attempt", 3)
		if err := o.Park(ctx, "T", in, "down"); err != nil {
			t.Fatal(err)
		}
		var got []event.Event
		rec := senderFunc(func(_ context.Context, evs []event.Event) error { got = append(got, evs...); return nil })
		if _, err := o.Relay(ctx, "T", rec); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(in) {
			t.Fatalf("relayed %d events, want %d", len(got), len(in))
		}
		for i := range in {
			want, _ := json.Marshal(in[i])
			have, _ := json.Marshal(got[i])
			if diff := cmp.Diff(decode(t, want), decode(t, have)); diff != "" {
				t.Errorf("event %d changed in the outbox (-parked +relayed):\n%s", i, diff)
			}
		}
	})

	t.Run("RelayStopsAtFirstNotDelivered", func(t *testing.T) {
		o, _, docs := setup(t)
		o.RelayBatch = 2
		if err := o.Park(ctx, "T", newEvents(t, "n", 5), "down"); err != nil {
			t.Fatal(err)
		}
		s := &scriptedSender{script: []func([]event.Event) error{ok, partial(1, 1, publish.ErrNotDelivered)}}
		st, err := o.Relay(ctx, "T", s)
		if !errors.Is(err, publish.ErrNotDelivered) {
			t.Fatalf("Relay err = %v, want ErrNotDelivered", err)
		}
		if diff := cmp.Diff(publish.RelayStats{Delivered: 3, Remaining: 2}, st); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][]string{{"n0", "n1"}, {"n2", "n3"}}, s.sent()); diff != "" {
			t.Errorf("sent (-want +got):\n%s", diff)
		}
		left := list(t, docs, "T")
		if len(left) != 2 || left["n3"].Attempts != 2 || left["n4"].Attempts != 1 || !strings.Contains(left["n3"].Reason, "fake") {
			t.Errorf("left %+v; want n3 (attempts 2, the failure's reason) and n4 (attempts 1)", left)
		}
		// The next run picks up where this one stopped.
		s2 := &scriptedSender{}
		if st, err := o.Relay(ctx, "T", s2); err != nil || st.Delivered != 2 || st.Remaining != 0 {
			t.Fatalf("second relay: %+v, %v", st, err)
		}
		if diff := cmp.Diff([][]string{{"n3", "n4"}}, s2.sent()); diff != "" {
			t.Errorf("second relay sent (-want +got):\n%s", diff)
		}
	})

	t.Run("RejectedAreKeptAndNotResent", func(t *testing.T) {
		o, _, docs := setup(t)
		if err := o.Park(ctx, "T", newEvents(t, "x", 4), "down"); err != nil {
			t.Fatal(err)
		}
		// x1 is refused; the events after it still go out.
		s := &scriptedSender{script: []func([]event.Event) error{partial(1, 1, publish.ErrRejected)}}
		st, err := o.Relay(ctx, "T", s)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(publish.RelayStats{Delivered: 3, Rejected: 1, Held: 1}, st); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][]string{{"x0", "x1", "x2", "x3"}, {"x2", "x3"}}, s.sent()); diff != "" {
			t.Errorf("sent (-want +got):\n%s", diff)
		}
		left := list(t, docs, "T")
		if d, ok := left["x1"]; len(left) != 1 || !ok || d.Kind != publish.KindRejected || !strings.Contains(d.Reason, "rejected") {
			t.Fatalf("left %+v; want x1 kept as rejected with the reason", left)
		}
		s2 := &scriptedSender{}
		st, err = o.Relay(ctx, "T", s2)
		if err != nil || len(s2.sent()) != 0 {
			t.Fatalf("a rejected event was re-sent: %v, %v", s2.sent(), err)
		}
		if diff := cmp.Diff(publish.RelayStats{Held: 1}, st); diff != "" {
			t.Errorf("stats of the second run (-want +got):\n%s", diff)
		}
		// After a fix, Requeue sends it again.
		if n, err := o.Requeue(ctx, "T"); err != nil || n != 1 {
			t.Fatalf("Requeue = %d, %v", n, err)
		}
		if st, err := o.Relay(ctx, "T", s2); err != nil || st.Delivered != 1 || st.Held != 0 {
			t.Fatalf("relay after requeue: %+v, %v", st, err)
		}
	})

	t.Run("ParkRejectedOverridesParked", func(t *testing.T) {
		o, _, docs := setup(t)
		evs := newEvents(t, "k", 2)
		if err := o.Park(ctx, "T", evs, "503"); err != nil {
			t.Fatal(err)
		}
		if err := o.ParkRejected(ctx, "T", evs[:1], "400 bad"); err != nil {
			t.Fatal(err)
		}
		if err := o.Park(ctx, "T", evs[:1], "503 again"); err != nil {
			t.Fatal(err)
		}
		left := list(t, docs, "T")
		if left["k0"].Kind != publish.KindRejected || left["k0"].Reason != "400 bad" || left["k1"].Kind != publish.KindParked {
			t.Errorf("documents %+v; want k0 rejected (400 bad), k1 parked", left)
		}
	})

	t.Run("SameIDOtherSourceIsAnotherEvent", func(t *testing.T) {
		o, _, docs := setup(t)
		a := newEvent(t, "same")
		b := newEvent(t, "same")
		b.SetSource("/contoso/other")
		if err := o.Park(ctx, "T", []event.Event{a, b}, "down"); err != nil {
			t.Fatal(err)
		}
		if err := o.Park(ctx, "T", []event.Event{b}, "down"); err != nil {
			t.Fatal(err)
		}
		if n := len(list(t, docs, "T")); n != 2 {
			t.Errorf("%d documents for two events sharing an id from different sources, want 2", n)
		}
	})

	t.Run("IDsCosmosCannotTake", func(t *testing.T) {
		o, _, _ := setup(t)
		evs := []event.Event{newEvent(t, "a/b?c#d"), newEvent(t, strings.Repeat("long", 100))}
		if err := o.Park(ctx, "T", evs, "down"); err != nil {
			t.Fatal(err)
		}
		if err := o.Park(ctx, "T", evs, "down"); err != nil {
			t.Fatal(err)
		}
		s := &scriptedSender{}
		if st, err := o.Relay(ctx, "T", s); err != nil || st.Delivered != 2 {
			t.Fatalf("relay: %+v, %v", st, err)
		}
		if diff := cmp.Diff([][]string{ids(evs)}, s.sent()); diff != "" {
			t.Errorf("sent (-want +got):\n%s", diff)
		}
	})

	t.Run("RelayLimitLeavesTheRestForNextRun", func(t *testing.T) {
		o, _, _ := setup(t)
		o.RelayBatch, o.RelayLimit = 2, 3
		if err := o.Park(ctx, "T", newEvents(t, "l", 5), "down"); err != nil {
			t.Fatal(err)
		}
		s := &scriptedSender{}
		st, err := o.Relay(ctx, "T", s)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(publish.RelayStats{Delivered: 3, Remaining: 2}, st); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][]string{{"l0", "l1"}, {"l2"}}, s.sent()); diff != "" {
			t.Errorf("sent (-want +got):\n%s", diff)
		}
	})

	t.Run("UndecodableDocumentIsHeldNotBlocking", func(t *testing.T) {
		o, clk, docs := setup(t)
		bad := publish.ParkedEvent{ID: "bad", Topic: "T", Kind: publish.KindParked, EventID: "bad",
			Event: json.RawMessage(`{"specversion":1}`), ParkedAt: clk.Now()}
		if _, err := docs.Put(ctx, "T", "bad", bad, docstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		if err := o.Park(ctx, "T", newEvents(t, "g", 1), "down"); err != nil {
			t.Fatal(err)
		}
		s := &scriptedSender{}
		st, err := o.Relay(ctx, "T", s)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(publish.RelayStats{Delivered: 1, Rejected: 1, Held: 1}, st); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
	})
}

type senderFunc func(ctx context.Context, events []event.Event) error

func (f senderFunc) Send(ctx context.Context, events []event.Event) error { return f(ctx, events) }

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
