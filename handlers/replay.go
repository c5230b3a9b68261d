package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/contoso/eventpipeline/pkg/clickstream"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

// replayDeadLetters (timerTrigger) replays parked events once their dependency is healthy. Poison
// records stay for inspection (replay them after a fix with `handler replay -poison`). A dependency
// that still fails fails the invocation; the records stay for the next tick.
func (a *app) replayDeadLetters(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
	if _, err := protocol.DecodeTimer(inv.Request, "timer"); err != nil {
		return nil, err
	}
	for _, fn := range []string{FnRecentlyViewed, FnProductChanges, FnTrends} {
		st, err := a.Replay(ctx, fn, false)
		inv.Log.Info("dead letters replayed", "target", fn, "replayed", st.Replayed, "stillPoison", st.StillPoison, "poisonKept", st.Skipped)
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// Replay re-processes the dead-lettered events of function (parked ones; poison ones too when
// includePoison). It is the timer's job and the `handler replay` command's.
func (d Deps) Replay(ctx context.Context, function string, includePoison bool) (deadletter.ReplayStats, error) {
	a := &app{Deps: d}
	var process deadletter.Processor
	switch function {
	case FnProductChanges:
		process = a.replayProductChange
	case FnTrends:
		process = a.replayTrends
	case FnRecentlyViewed:
		process = func(ctx context.Context, rec deadletter.Record) error {
			raw, err := clickstream.FromRecord(rec)
			if err != nil {
				return errors.Join(deadletter.ErrStillPoison, err)
			}
			src := clickstream.Source{Function: FnRecentlyViewed, Name: rec.Source}
			dec := clickstream.Decode(src, []clickstream.Raw{raw}, a.Now())
			if len(dec.Poison) > 0 {
				return fmt.Errorf("%w: %s", deadletter.ErrStillPoison, dec.Poison[0].Reason)
			}
			_, err = a.Recent.Apply(ctx, clickstream.ViewsByViewer(dec.Clicks))
			return err
		}
	default:
		return deadletter.ReplayStats{}, fmt.Errorf("replay: no replay for function %q", function)
	}
	return deadletter.Replay(ctx, a.DeadLetters, function, includePoison, process)
}
