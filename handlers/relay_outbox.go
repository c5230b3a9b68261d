package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/contoso/eventpipeline/pkg/protocol"
)

// relayOutbox (timerTrigger, every 5 minutes) re-publishes the events parked in each destination's
// outbox (AnalyticsEventsTopic, ProductEventsTopic, feedback) through that destination's sender.
//
// Failures: a destination that is still down (not delivered) or an outbox that cannot be read fails
// the invocation after every destination was tried, so one topic's outage does not hold up the
// others; the events stay parked for the retry and the next tick. Rejected events are kept in the
// outbox as rejected and logged; they never fail the invocation (a retry cannot help them).
func (a *app) relayOutbox(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
	if _, err := protocol.DecodeTimer(inv.Request, "timer"); err != nil {
		return nil, err
	}
	return nil, a.RelayOutbox(ctx, inv.Log)
}

// RelayOutbox relays every destination's outbox once, in name order: the RelayOutbox timer's job (and
// a maintenance command's). It returns the failures of all destinations joined.
func (d Deps) RelayOutbox(ctx context.Context, log *slog.Logger) error {
	if log == nil {
		log = d.Log
	}
	var errs []error
	for _, dest := range slices.Sorted(maps.Keys(d.Publishers)) {
		st, err := d.Publishers[dest].Relay(ctx)
		attrs := []any{"destination", dest, "delivered", st.Delivered, "rejected", st.Rejected,
			"remaining", st.Remaining, "heldRejected", st.Held}
		switch {
		case err != nil:
			log.Warn("outbox relay stopped", append(attrs, "error", err.Error())...)
			errs = append(errs, err)
		case st.Rejected > 0:
			log.Warn("outbox relay: events rejected by the destination, kept as rejected", attrs...)
		case st.Delivered > 0 || st.Remaining > 0 || st.Held > 0:
			log.Info("outbox relayed", attrs...)
		}
	}
	return errors.Join(errs...)
}

// RequeueRejected turns destination's rejected events back into parked ones, once the cause is fixed
// (a role assignment, a key, the topic's input schema); the next relay sends them.
func (d Deps) RequeueRejected(ctx context.Context, destination string) (int, error) {
	p, ok := d.Publishers[destination]
	if !ok {
		return 0, fmt.Errorf("requeue: no destination %q (have %v)", destination, slices.Sorted(maps.Keys(d.Publishers)))
	}
	return p.Requeue(ctx)
}
