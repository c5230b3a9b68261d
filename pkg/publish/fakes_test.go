package publish_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/publish"
)

// scriptedSender is a hand-written fake Sender: each call takes the next scripted answer (nil when
// the script is used up) and records the ids it was given.
type scriptedSender struct {
	mu     sync.Mutex
	script []func(events []event.Event) error
	calls  [][]string
}

func (s *scriptedSender) Send(_ context.Context, events []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, ids(events))
	if len(s.script) == 0 {
		return nil
	}
	f := s.script[0]
	s.script = s.script[1:]
	return f(events)
}

func (s *scriptedSender) sent() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.calls...)
}

// answers for the script.
func ok(events []event.Event) error { return nil }

func notDelivered(events []event.Event) error {
	return fmt.Errorf("fake: 503: %w", publish.ErrNotDelivered)
}

func rejected(events []event.Event) error { return fmt.Errorf("fake: 400: %w", publish.ErrRejected) }

func unclassified(events []event.Event) error { return fmt.Errorf("fake: something odd") }

// partial delivers d events, then fails f with kind.
func partial(d, f int, kind error) func([]event.Event) error {
	return func(events []event.Event) error {
		return &publish.PartialError{Delivered: d, Failed: f, Err: fmt.Errorf("fake: %w", kind)}
	}
}

func ids(events []event.Event) []string {
	out := make([]string, len(events))
	for i := range events {
		out[i] = events[i].ID()
	}
	return out
}

// newEvent is a product-change-like event with JSON data and an extension.
func newEvent(t testing.TB, id string) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource("/contoso/catalog")
	e.SetType("com.contoso.product.updated")
	e.SetSubject("/products/shoes/" + id)
	e.SetTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	e.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if err := e.SetData(event.ApplicationJSON, map[string]any{"id": id, "price": 12.5, "stock": 3}); err != nil {
		t.Fatal(err)
	}
	return e
}

func newEvents(t testing.TB, prefix string, n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = newEvent(t, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// clock is a fake clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
