package publish

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
)

// PartialError reports a send that stopped part-way through a batch. Senders that split a batch
// into several requests return it so that nothing delivered is counted as lost: the first Delivered
// events were delivered, in order; the next Failed events (the request that failed) failed with Err,
// which wraps ErrRejected or ErrNotDelivered; the events after those were not attempted.
//
// Re-sending the whole batch after a PartialError is safe: event ids are deterministic, so the events
// delivered the first time carry the same ids and consumers de-duplicate them.
type PartialError struct {
	Delivered int
	Failed    int
	Err       error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%d event(s) delivered, then %d failed: %v", e.Delivered, e.Failed, e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }

// Progress reads how far a failed Send of n events got. A *PartialError says it exactly (clamped to
// n); any other error means nothing is known to be delivered and all n failed.
func Progress(err error, n int) (delivered, failed int) {
	var pe *PartialError
	if !errors.As(err, &pe) {
		return 0, n
	}
	delivered = min(max(pe.Delivered, 0), n)
	failed = min(max(pe.Failed, 1), n-delivered)
	return delivered, failed
}

// Classify returns ErrRejected or ErrNotDelivered for a failed send. An error that carries neither
// kind (a bug, a cancelled context, an unexpected reply) counts as not delivered: trying again later
// is safe, dropping the events would not be.
func Classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotDelivered):
		return ErrNotDelivered
	case errors.Is(err, ErrRejected):
		return ErrRejected
	default:
		return ErrNotDelivered
	}
}

// deliveryHooks are told which ranges of the batch (indexes [from, to)) were delivered or rejected.
// An error from a hook stops the delivery.
type deliveryHooks struct {
	delivered func(from, to int) error
	rejected  func(from, to int, err error) error
}

// deliveryResult is where deliver stopped.
type deliveryResult struct {
	// next is the first event that was neither delivered nor rejected (len(events) when none).
	next int
	// failed is how many events from next were in the request that was not delivered.
	failed int
	// sendErr is the not-delivered error that stopped the delivery; storeErr a hook's error.
	sendErr, storeErr error
}

// deliver sends events through s in order. Rejected runs are handed to hooks.rejected and the rest
// of the batch is sent on: an event the destination refuses must not hold up the ones after it. The
// first not-delivered failure stops it (the destination is down; later events would fail too).
func deliver(ctx context.Context, s Sender, events []event.Event, hooks deliveryHooks) deliveryResult {
	i := 0
	for i < len(events) {
		err := s.Send(ctx, events[i:])
		d, f := len(events)-i, 0
		if err != nil {
			d, f = Progress(err, len(events)-i)
		}
		if d > 0 && hooks.delivered != nil {
			if herr := hooks.delivered(i, i+d); herr != nil {
				return deliveryResult{next: i, storeErr: herr}
			}
		}
		i += d
		if err == nil {
			break
		}
		if Classify(err) != ErrRejected {
			return deliveryResult{next: i, failed: f, sendErr: err}
		}
		if herr := hooks.rejected(i, i+f, err); herr != nil {
			return deliveryResult{next: i, storeErr: herr}
		}
		i += f
	}
	return deliveryResult{next: len(events)}
}
