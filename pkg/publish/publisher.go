package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Publisher is how every function publishes: one destination (a topic or hub name), its Sender, and
// the outbox in front of it. It applies the delivery rule in one place:
//
//	delivered                      -> nil
//	rejected (ErrRejected)         -> kept in the outbox as rejected, logged, nil: a retry cannot help
//	not delivered (ErrNotDelivered,
//	or any unclassified error)     -> before the last attempt: the error (the invocation fails and the
//	                                  host retries it); on the last attempt: parked in the outbox for
//	                                  the relay timer, nil
//
// Events before and after a rejected run are still sent. Only the events not delivered are parked;
// a retried invocation re-sends the whole batch, which is safe because event ids are deterministic.
type Publisher struct {
	destination string
	sender      Sender
	outbox      Store
	log         *slog.Logger
}

// NewPublisher returns the Publisher of destination. log may be nil (slog.Default()).
func NewPublisher(destination string, s Sender, outbox Store, log *slog.Logger) *Publisher {
	if log == nil {
		log = slog.Default()
	}
	return &Publisher{destination: destination, sender: s, outbox: outbox, log: log.With("destination", destination)}
}

// Destination is the topic or hub name events are published to.
func (p *Publisher) Destination() string { return p.destination }

// Sender is the destination's sender (the relay re-sends through it).
func (p *Publisher) Sender() Sender { return p.sender }

// Publish sends events, in order. lastAttempt is protocol.RetryContext.LastAttempt() of the
// invocation: true when the host will not run it again. It returns nil when every event was delivered,
// rejected and kept, or parked; otherwise an error wrapping ErrNotDelivered that must fail the
// invocation (or an outbox error, which must too).
func (p *Publisher) Publish(ctx context.Context, events []event.Event, lastAttempt bool) error {
	if p == nil || p.sender == nil || p.outbox == nil {
		return errors.New("publish: no publisher configured for this destination")
	}
	if len(events) == 0 {
		return nil
	}
	res := deliver(ctx, p.sender, events, deliveryHooks{
		rejected: func(from, to int, err error) error {
			rej := events[from:to]
			if perr := p.outbox.ParkRejected(ctx, p.destination, rej, err.Error()); perr != nil {
				return fmt.Errorf("keeping %d rejected event(s): %w", len(rej), perr)
			}
			p.log.Warn("events rejected by the destination; kept in the outbox as rejected",
				"count", len(rej), "firstId", rej[0].ID(), "firstType", rej[0].Type(), "error", err.Error())
			return nil
		},
	})
	if res.storeErr != nil {
		return fmt.Errorf("publish %s: %w", p.destination, res.storeErr)
	}
	if res.sendErr == nil {
		return nil
	}
	rest := events[res.next:]
	if !lastAttempt {
		err := res.sendErr
		if !errors.Is(err, ErrNotDelivered) {
			err = fmt.Errorf("%w: %w", ErrNotDelivered, err)
		}
		return fmt.Errorf("publish %s: %d of %d event(s) not sent: %w", p.destination, len(rest), len(events), err)
	}
	if err := p.outbox.Park(ctx, p.destination, rest, res.sendErr.Error()); err != nil {
		return fmt.Errorf("publish %s: %d event(s) not delivered (%w) and parking them failed: %w",
			p.destination, len(rest), res.sendErr, err)
	}
	p.log.Warn("events not delivered on the last attempt; parked in the outbox for the relay",
		"count", len(rest), "firstId", rest[0].ID(), "error", res.sendErr.Error())
	return nil
}

// Relay re-sends what is parked for the destination (the RelayOutbox timer's job).
func (p *Publisher) Relay(ctx context.Context) (RelayStats, error) {
	if p == nil || p.sender == nil || p.outbox == nil {
		return RelayStats{}, errors.New("publish: no publisher configured for this destination")
	}
	return p.outbox.Relay(ctx, p.destination, p.sender)
}

// Requeue turns the destination's rejected events back into parked ones, for the next Relay to send,
// once the cause is fixed (a role assignment, the topic's input schema). The outbox must support it
// (DocOutbox does).
func (p *Publisher) Requeue(ctx context.Context) (int, error) {
	r, ok := p.outbox.(interface {
		Requeue(ctx context.Context, destination string) (int, error)
	})
	if !ok {
		return 0, fmt.Errorf("publish %s: the outbox (%T) cannot requeue rejected events", p.destination, p.outbox)
	}
	return r.Requeue(ctx, p.destination)
}
