package handlers

import (
	"context"
	"errors"

	"github.com/contoso/eventpipeline/pkg/protocol"
)

// materializeTrends (timerTrigger, every minute at second 0) merges the partitions' counts of every
// minute not final yet into minute and hour totals and writes the trending snapshots ending at the
// new minute, so clicks are visible to GetTrending one tick after they are counted.
//
// A store failure fails the invocation on every attempt (the retry policy runs it again). Nothing is
// lost when the retries run out: the materializer's cursor has not moved, and the next tick merges
// and writes what this one could not.
func (a *app) materializeTrends(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
	if _, err := protocol.DecodeTimer(inv.Request, "timer"); err != nil {
		return nil, err
	}
	if a.Trends == nil {
		return nil, errors.New("trends: the trends service is not configured")
	}
	st, err := a.Trends.Materialize(ctx)
	inv.Log.Info("trends materialized", "merged", st.Merged, "reopened", st.Reopened, "hours", st.Hours,
		"snapshots", st.Snapshots, "reads", st.Reads, "writes", st.Writes,
		"closedThrough", st.ClosedThrough, "mergedThrough", st.MergedThrough, "snapshotThrough", st.SnapshotThrough)
	return nil, err
}
