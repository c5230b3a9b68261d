// Package publish is the one way this project publishes CloudEvents: a Sender interface with two
// adapter families (Event Grid topics via azeventgrid, Event Hubs via azeventhubs, each with an
// embedded JSON-lines twin under LOCAL_DATA_DIR/events/<name>.jsonl) and a durable outbox in front
// for what could not be delivered now.
//
// A send result is classified like cloudevents/sdk-go does: delivered (nil error), rejected
// (ErrRejected: the service refused the events themselves, e.g. 400 or 413; retrying the same events
// cannot help) or not delivered (ErrNotDelivered: throttled, unavailable, unreachable; retry later).
// Event ids are deterministic in this project, so a retried send carries the same ids and consumers
// de-duplicate by id.
package publish

import (
	"context"
	"errors"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Classification of a failed send.
var (
	ErrRejected     = errors.New("events rejected")
	ErrNotDelivered = errors.New("events not delivered")
)

// Sender publishes a batch of structured CloudEvents to one destination. Implementations split the
// batch to respect the destination's limits and keep the given order within each request.
type Sender interface {
	Send(ctx context.Context, events []event.Event) error
}

// Outbox keeps events that could not be delivered, per destination (a topic or hub name), until a
// relay re-sends them. Parking is idempotent by event id.
type Outbox interface {
	Park(ctx context.Context, destination string, events []event.Event, reason string) error
	// Relay re-sends what is parked for destination through s, oldest first, removing what was
	// delivered. It stops at the first not-delivered failure (the destination is still down).
	Relay(ctx context.Context, destination string, s Sender) (RelayStats, error)
}

// RelayStats counts one relay run: events delivered and newly rejected by this run, parked events
// still waiting after it (Remaining), and rejected events kept for inspection after it (Held; they
// are never re-sent automatically).
type RelayStats struct {
	Delivered, Rejected, Remaining int
	Held                           int
}
