package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/contoso/eventpipeline/pkg/clickstream"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/delivery"
	"github.com/contoso/eventpipeline/pkg/events"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/settings"
	"github.com/contoso/eventpipeline/pkg/trends"
)

// trends counts a clickstream batch for trending (eventHubTrigger on hub clickstream, consumer group
// trends, cardinality many, dataType string). It decodes clicks exactly as RecentlyViewed does
// (decodeEventBatch, clickstream.Decode) and counts product views per partition and minute
// (pkg/trends).
//
// Outcomes (see pkg/delivery):
//   - malformed events are dead-lettered as poison with their reason and position; events of other
//     types and clicks that are not views are skipped; views later than the allowed lateness are
//     counted in the partition's Late metric and logged, not in a minute;
//   - a batch that cannot be counted exactly once (no partition id or sequence numbers in the
//     metadata) is dead-lettered whole as poison;
//   - a store failure fails the invocation (500) so the retry policy re-runs the batch, which is
//     idempotent; on the last retry the batch is parked in the dead-letter store for
//     ReplayDeadLetters and the invocation succeeds;
//   - a dead-letter store failure fails the invocation.
func (a *app) trends(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
	if a.Trends == nil {
		return nil, errors.New("trends: the trends service is not configured")
	}
	retry, err := inv.Request.Retry()
	if err != nil {
		return nil, err
	}
	src := clickstream.Source{Function: FnTrends, InvocationID: inv.ID,
		Name: "eventhub/" + settings.HubClickstream + "/" + settings.ConsumerGroupTrends}
	raws, err := a.decodeEventBatch(ctx, inv, src, "events")
	if err != nil || raws == nil {
		return nil, err
	}
	st, err := a.countViews(ctx, src, raws)
	parked, err := delivery.Settle(ctx, err, retry.LastAttempt(), func(ctx context.Context, reason string) error {
		return a.park(ctx, src, raws, reason)
	})
	if err != nil {
		return nil, err
	}
	inv.Log.Info("batch counted", "events", len(raws), "views", st.Views, "duplicates", st.Duplicates,
		"late", st.Late, "expired", st.Expired, "minutes", st.Minutes, "reopened", st.Reopened, "writes", st.Writes,
		"conflicts", st.Conflicts, "skipped", st.skipped, "deadLettered", st.poison, "parked", parked,
		"partition", raws[0].Partition, "firstSequence", raws[0].SequenceNumber, "lastSequence", raws[len(raws)-1].SequenceNumber)
	return nil, nil
}

type countStats struct {
	trends.ApplyStats
	skipped, poison int
}

// countViews dead-letters the poison events of raws and counts the views.
func (a *app) countViews(ctx context.Context, src clickstream.Source, raws []clickstream.Raw) (countStats, error) {
	d := clickstream.Decode(src, raws, a.Now())
	st := countStats{skipped: d.Skipped, poison: len(d.Poison)}
	if len(d.Poison) > 0 {
		if err := a.DeadLetters.Put(ctx, d.Poison...); err != nil {
			return st, fmt.Errorf("dead-letter %d poison events: %w", len(d.Poison), err)
		}
	}
	b := viewBatch(raws, d)
	ast, err := a.Trends.Apply(ctx, b)
	st.ApplyStats = ast
	if errors.Is(err, trends.ErrInvalid) {
		// A retry cannot add the metadata the batch lacks: dead-letter it whole, as poison.
		recs := make([]deadletter.Record, len(raws))
		for i := range raws {
			recs[i] = clickstream.Record(src, &raws[i], deadletter.KindPoison, "cannot be counted exactly once: "+err.Error(), a.Now())
		}
		st.poison = len(recs)
		if perr := a.DeadLetters.Put(ctx, recs...); perr != nil {
			return st, fmt.Errorf("dead-letter a batch without positions: %w", perr)
		}
		return st, nil
	}
	return st, err
}

// viewBatch is the trends batch of decoded events: the product views, and the sequence numbers the
// batch decides: every event, poison ones too (they are in the dead-letter store; a replay after a
// fix counts them through trends.ApplyReplayedPoison), so the partition's runs stay contiguous.
func viewBatch(raws []clickstream.Raw, d clickstream.Decoded) trends.Batch {
	b := trends.Batch{Partition: raws[0].Partition}
	enqueued := make(map[int64]time.Time, len(raws))
	seqs := make([]int64, 0, len(raws))
	for i := range raws {
		r := &raws[i]
		enqueued[r.SequenceNumber] = r.EnqueuedTime
		if r.EnqueuedTime.After(b.Enqueued) {
			b.Enqueued = r.EnqueuedTime
		}
		seqs = append(seqs, r.SequenceNumber)
	}
	b.Seqs = trends.RangesOf(seqs...)
	for i := range d.Clicks {
		c := &d.Clicks[i]
		if c.Type != events.TypeProductViewed {
			continue
		}
		b.Views = append(b.Views, trends.View{Seq: c.SequenceNumber, ProductID: c.ProductID, Category: c.Category,
			Time: c.Time, Enqueued: enqueued[c.SequenceNumber]})
	}
	return b
}

// replayTrends counts one dead-lettered event again (ReplayDeadLetters and `handler replay`). The
// event keeps its partition and sequence number, so an event that was counted before is not counted
// twice: a parked event through the partition's aggregates like any batch, a poison event (replayed
// after a fix) through its own create-only document (trends.ApplyReplayedPoison).
func (a *app) replayTrends(ctx context.Context, rec deadletter.Record) error {
	if a.Trends == nil {
		return errors.New("trends: the trends service is not configured")
	}
	raw, err := clickstream.FromRecord(rec)
	if err != nil {
		return errors.Join(deadletter.ErrStillPoison, err)
	}
	src := clickstream.Source{Function: FnTrends, Name: rec.Source}
	raws := []clickstream.Raw{raw}
	d := clickstream.Decode(src, raws, a.Now())
	if len(d.Poison) > 0 {
		if rec.Kind != deadletter.KindPoison {
			// A parked event that is poison is decided like a poison event of a live batch.
			if _, err := a.Trends.Apply(ctx, viewBatch(raws, clickstream.Decoded{})); err != nil && !errors.Is(err, trends.ErrInvalid) {
				return err
			}
		}
		return fmt.Errorf("%w: %s", deadletter.ErrStillPoison, d.Poison[0].Reason)
	}
	apply := a.Trends.Apply
	if rec.Kind == deadletter.KindPoison {
		apply = a.Trends.ApplyReplayedPoison
	}
	_, err = apply(ctx, viewBatch(raws, d))
	if errors.Is(err, trends.ErrInvalid) {
		return errors.Join(deadletter.ErrStillPoison, err)
	}
	return err
}
