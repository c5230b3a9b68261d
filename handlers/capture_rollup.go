package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/contoso/eventpipeline/pkg/jobs"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

// captureRollup (timerTrigger "0 30 0 * * *", 00:30 UTC daily, fixedDelay retry 3 x 5 min) completes
// the previous UTC day of the clickstream rollup from Event Hubs Capture, and catches up days that
// were missed (the timer fired past due) or left unfinished, at most 7 days back (pkg/jobs,
// docs/batch-jobs.md). Re-run a named day with `handler rollup -day YYYY-MM-DD`.
//
// Outcomes: a store, Capture container or topic failure fails the invocation before the last retry
// (the retry resumes: processed files are not read again); on the last retry the day stays pending
// with its error for the next daily run, and an undelivered completion event is parked in the outbox.
// A corrupt Capture file is dead-lettered with its name and reason and the day goes on without it.
func (a *app) captureRollup(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
	timer, err := protocol.DecodeTimer(inv.Request, "timer")
	if err != nil {
		return nil, err
	}
	if a.Rollup == nil {
		return nil, errors.New("rollup: the Capture rollup is not configured")
	}
	retry, err := inv.Request.Retry()
	if err != nil {
		return nil, err
	}
	res, err := a.Rollup.Scheduled(ctx, a.Now(), jobs.Timer{PastDue: timer.IsPastDue, LastRun: timer.LastRun()},
		jobs.RunOptions{LastAttempt: retry.LastAttempt(), By: FnCaptureRollup, InvocationID: inv.ID})
	for _, d := range res.Days {
		inv.Log.Info("rollup day", "day", d.Day, "status", d.Status, "runId", d.RunID, "files", d.Files, "read", d.Read,
			"corrupt", d.Corrupt, "missing", d.Missing, "events", d.Counts["events"], "views", d.Counts["views"],
			"recommendationsUpdated", d.Recommendations.Updated, "eventId", d.EventID, "ms", d.Duration.Milliseconds())
	}
	if len(res.Pending) > 0 {
		inv.Log.Warn("rollup days left pending for the next run", "pending", res.Pending)
	}
	return nil, err
}

// RollupDay is `handler rollup -day D [-reprocess]`: it completes the named day now, again if it was
// completed (same reports, same completion event id), reading every Capture file again with
// reprocess. A completion event that cannot be delivered fails the command (the day stays running;
// run it again).
func (d Deps) RollupDay(ctx context.Context, day time.Time, reprocess bool) (jobs.DayResult, error) {
	if d.Rollup == nil {
		return jobs.DayResult{}, errors.New("rollup: the Capture rollup is not configured")
	}
	return d.Rollup.RunDay(ctx, day, jobs.RunOptions{Rerun: true, Reprocess: reprocess, By: "handler rollup"})
}
