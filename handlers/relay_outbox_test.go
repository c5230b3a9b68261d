package handlers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// toggleSender is a fake destination that is down until told otherwise and records what it got.
type toggleSender struct {
	mu   sync.Mutex
	down bool
	got  []string
}

func (s *toggleSender) Send(_ context.Context, evs []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return fmt.Errorf("fake topic: 503: %w", publish.ErrNotDelivered)
	}
	for i := range evs {
		s.got = append(s.got, evs[i].ID())
	}
	return nil
}

func (s *toggleSender) set(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *toggleSender) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func relayEvents(prefix string, n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		e := event.New()
		e.SetID(fmt.Sprintf("%s-%d", prefix, i))
		e.SetSource("/contoso/test")
		e.SetType("com.contoso.test")
		_ = e.SetData(event.ApplicationJSON, map[string]int{"n": i})
		out[i] = e
	}
	return out
}

func TestRelayOutbox(t *testing.T) {
	ctx := context.Background()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	docs, err := embedded.NewCollection[publish.ParkedEvent](db, settings.ContainerOutbox.Name)
	if err != nil {
		t.Fatal(err)
	}
	outbox := publish.NewOutbox(docs)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	analytics, products := &toggleSender{}, &toggleSender{down: true}
	deps := handlers.Deps{Log: log, Publishers: map[string]*publish.Publisher{
		settings.AnalyticsTopic: publish.NewPublisher(settings.AnalyticsTopic, analytics, outbox, log),
		settings.ProductTopic:   publish.NewPublisher(settings.ProductTopic, products, outbox, log),
	}}
	// Events that could not be delivered on a function's last attempt.
	analytics.set(true)
	for dest, n := range map[string]int{settings.AnalyticsTopic: 3, settings.ProductTopic: 2} {
		if err := deps.Publishers[dest].Publish(ctx, relayEvents(dest, n), true); err != nil {
			t.Fatal(err)
		}
	}
	if docs.Len() != 5 {
		t.Fatalf("%d events parked, want 5", docs.Len())
	}
	analytics.set(false)

	srv := httptest.NewServer(handlers.New(deps))
	t.Cleanup(srv.Close)
	host := &hostsim.Client{BaseURL: srv.URL}
	tick := func(retry *protocol.RetryContext) int {
		t.Helper()
		now := time.Date(2026, 11, 25, 12, 5, 0, 0, time.UTC)
		res, err := host.Invoke(ctx, handlers.FnRelayOutbox, hostsim.Timer(handlers.FnRelayOutbox, "timer", now.Add(-5*time.Minute), now, false, retry))
		if err != nil {
			t.Fatal(err)
		}
		return res.Status
	}

	// Product topic still down: the analytics outbox drains anyway, the invocation fails for a retry.
	if status := tick(&protocol.RetryContext{RetryCount: 0, MaxRetryCount: 2}); status/100 == 2 {
		t.Fatalf("status %d with a destination still down, want a failed invocation", status)
	}
	if analytics.received() != 3 || docs.Len() != 2 {
		t.Fatalf("analytics received %d (want 3), %d still parked (want 2)", analytics.received(), docs.Len())
	}
	// Back up: the next tick delivers the rest and succeeds.
	products.set(false)
	if status := tick(nil); status != 200 {
		t.Fatalf("status %d, want 200", status)
	}
	if products.received() != 2 || docs.Len() != 0 {
		t.Fatalf("products received %d (want 2), %d still parked (want 0)", products.received(), docs.Len())
	}
	// Nothing parked: a quiet success.
	if status := tick(nil); status != 200 || analytics.received() != 3 {
		t.Fatalf("empty outbox: status %d, analytics received %d", status, analytics.received())
	}
}

func TestRequeueRejectedUnknownDestination(t *testing.T) {
	d := handlers.Deps{Publishers: map[string]*publish.Publisher{}}
	if _, err := d.RequeueRejected(context.Background(), "nope"); err == nil {
		t.Error("RequeueRejected of an unknown destination succeeded")
	}
}
