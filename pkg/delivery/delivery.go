// Package delivery decides, in one place for every trigger, what a failure means. Each invocation
// ends in one of three ways:
//   - processed: the work is done (including events skipped by rule);
//   - poison: an event is bad in itself; it is dead-lettered with its reason and the rest goes on;
//   - transient: a dependency failed. Before the last retry the invocation fails, so the host's retry
//     policy runs it again (Event Hubs and Cosmos DB triggers checkpoint after the retries run out).
//     On the last retry the work is parked (dead-letter or outbox) and the invocation succeeds, so
//     the checkpoint never moves past work that was not saved somewhere.
package delivery

import (
	"context"
	"errors"
	"fmt"
)

// Settle applies the transient rule to err, the error of processing a batch. lastAttempt is true when
// the host will not retry (the last retry, or no retry policy). park saves the batch for replay.
// It returns the error that must fail the invocation, or nil.
//
// Running out of time is transient like a store failure: when ctx's deadline (the invocation's work
// deadline, see pkg/protocol) has passed, the work is parked on the last attempt, with the time ctx
// keeps in reserve for that (WithReserve), so the checkpoint never passes unsaved events.
func Settle(ctx context.Context, err error, lastAttempt bool, park func(ctx context.Context, reason string) error) (parked bool, _ error) {
	if err == nil {
		return false, nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
	}
	if !lastAttempt {
		return false, err
	}
	if perr := park(Reserve(ctx), err.Error()); perr != nil {
		// Nothing is left to save the work to: fail loudly; the host logs it as a failed invocation.
		return false, errors.Join(err, fmt.Errorf("parking the batch failed too: %w", perr))
	}
	return true, nil
}

type reserveKey struct{}

// WithReserve returns ctx carrying reserve: a context that outlives ctx's deadline, for parking the
// work of an invocation that ran out of time (Settle uses it).
func WithReserve(ctx, reserve context.Context) context.Context {
	return context.WithValue(ctx, reserveKey{}, reserve)
}

// Reserve returns the reserve context WithReserve put in ctx, or ctx itself when there is none or
// ctx has not ended.
func Reserve(ctx context.Context) context.Context {
	if ctx.Err() == nil {
		return ctx
	}
	if r, ok := ctx.Value(reserveKey{}).(context.Context); ok {
		return r
	}
	return ctx
}
