package handlers

import (
	"context"
	"fmt"

	"github.com/contoso/eventpipeline/pkg/clickstream"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/delivery"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// recentlyViewed handles a clickstream batch (eventHubTrigger, cardinality many, dataType string,
// consumer group recently-viewed).
//
// Outcomes (see pkg/delivery):
//   - malformed events (not JSON, not a CloudEvent, no product or viewer) are dead-lettered as poison
//     with their reason and position; events of other types are skipped; the rest is applied;
//   - a store failure fails the invocation (500) so the retry policy re-runs the batch (idempotent);
//     on the last retry the batch's events are parked in the dead-letter store for ReplayDeadLetters
//     and the invocation succeeds;
//   - a dead-letter store failure fails the invocation.
func (a *app) recentlyViewed(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
	retry, err := inv.Request.Retry()
	if err != nil {
		return nil, err
	}
	src := clickstream.Source{Function: FnRecentlyViewed, InvocationID: inv.ID,
		Name: "eventhub/" + settings.HubClickstream + "/" + settings.ConsumerGroupRecent}
	raws, err := a.decodeEventBatch(ctx, inv, src, "events")
	if err != nil || raws == nil {
		return nil, err
	}
	st, err := a.applyClicks(ctx, src, raws)
	parked, err := delivery.Settle(ctx, err, retry.LastAttempt(), func(ctx context.Context, reason string) error {
		return a.park(ctx, src, raws, reason)
	})
	if err != nil {
		return nil, err
	}
	inv.Log.Info("batch applied", "events", len(raws), "clicks", st.clicks, "viewers", st.viewers,
		"writes", st.writes, "skipped", st.skipped, "deadLettered", st.poison, "parked", parked,
		"partition", raws[0].Partition, "firstSequence", raws[0].SequenceNumber, "lastSequence", raws[len(raws)-1].SequenceNumber)
	return nil, nil
}

type clickStats struct {
	clicks, viewers, writes, skipped, poison int
}

// applyClicks decodes raws, dead-letters the poison ones and applies the views.
func (a *app) applyClicks(ctx context.Context, src clickstream.Source, raws []clickstream.Raw) (clickStats, error) {
	d := clickstream.Decode(src, raws, a.Now())
	st := clickStats{clicks: len(d.Clicks), skipped: d.Skipped, poison: len(d.Poison)}
	if len(d.Poison) > 0 {
		if err := a.DeadLetters.Put(ctx, d.Poison...); err != nil {
			return st, fmt.Errorf("dead-letter %d poison events: %w", len(d.Poison), err)
		}
	}
	views := clickstream.ViewsByViewer(d.Clicks)
	ast, err := a.Recent.Apply(ctx, views)
	st.viewers, st.writes = ast.Viewers, ast.Writes
	return st, err
}

// decodeEventBatch decodes an Event Hubs batch envelope into raw events. An envelope that cannot be
// decoded at all is dead-lettered whole (it will never decode better on retry) and nil is returned.
func (a *app) decodeEventBatch(ctx context.Context, inv *protocol.Invocation, src clickstream.Source, binding string) ([]clickstream.Raw, error) {
	b, err := protocol.DecodeEventHubBatch(inv.Request, binding, false)
	if err != nil {
		raw := inv.Request.Data[binding]
		r := clickstream.Raw{Body: raw, SequenceNumber: -1}
		rec := clickstream.Record(src, &r, deadletter.KindPoison, "undecodable batch: "+err.Error(), a.Now())
		if perr := a.DeadLetters.Put(ctx, rec); perr != nil {
			return nil, fmt.Errorf("dead-letter undecodable batch: %w", perr)
		}
		inv.Log.Error("undecodable batch dead-lettered", "error", err.Error(), "record", rec.ID)
		return nil, nil
	}
	if len(b.Events) == 0 {
		return nil, nil
	}
	raws := make([]clickstream.Raw, len(b.Events))
	for i := range b.Events {
		ev := &b.Events[i]
		raws[i] = clickstream.Raw{Body: ev.Body, Properties: ev.Properties, RawProperties: ev.RawProperties(),
			Partition: b.Partition.PartitionID, SequenceNumber: ev.SequenceNumber, Offset: ev.Offset, EnqueuedTime: ev.EnqueuedTime}
	}
	return raws, nil
}

// park saves every event of the batch for replay, poison ones too (they already have a poison record
// with the same id, which this relabels as parked): a replay then decides every event of the batch,
// and one that is still poison goes back to being a poison record with its reason. For Trends this
// is what keeps a partition's applied runs contiguous after a parked batch is replayed.
func (a *app) park(ctx context.Context, src clickstream.Source, raws []clickstream.Raw, reason string) error {
	recs := make([]deadletter.Record, len(raws))
	for i := range raws {
		recs[i] = clickstream.Record(src, &raws[i], deadletter.KindParked, "parked on last retry: "+reason, a.Now())
	}
	return a.DeadLetters.Put(ctx, recs...)
}

// parkOverdueClicks is the overdue hook of a clickstream function (protocol.WithOverdue): on the last
// attempt, an invocation whose function did not return in time has its batch parked whole, as on a
// store failure, so the checkpoint that follows passes nothing unsaved.
func (a *app) parkOverdueClicks(function, consumerGroup string) protocol.Func {
	return func(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
		src := clickstream.Source{Function: function, InvocationID: inv.ID,
			Name: "eventhub/" + settings.HubClickstream + "/" + consumerGroup}
		raws, err := a.decodeEventBatch(ctx, inv, src, "events")
		if err != nil || raws == nil {
			return nil, err
		}
		if err := a.park(ctx, src, raws, "the invocation ran past its deadline"); err != nil {
			return nil, err
		}
		inv.Log.Warn("overdue batch parked", "events", len(raws), "partition", raws[0].Partition,
			"firstSequence", raws[0].SequenceNumber, "lastSequence", raws[len(raws)-1].SequenceNumber)
		return nil, nil
	}
}
