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
func Settle(ctx context.Context, err error, lastAttempt bool, park func(ctx context.Context, reason string) error) (parked bool, _ error) {
	if err == nil {
		return false, nil
	}
	if !lastAttempt {
		return false, err
	}
	if perr := park(ctx, err.Error()); perr != nil {
		// Nothing is left to save the work to: fail loudly; the host logs it as a failed invocation.
		return false, errors.Join(err, fmt.Errorf("parking the batch failed too: %w", perr))
	}
	return true, nil
}
