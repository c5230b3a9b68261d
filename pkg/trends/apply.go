package trends

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// View is one product view to count.
type View struct {
	Seq       int64
	ProductID string
	Category  string
	Time      time.Time // event time
	Enqueued  time.Time // when the hub accepted it; zero when unknown
}

// Batch is what one invocation delivered from one partition.
type Batch struct {
	Partition string
	// Seqs are the sequence numbers this batch decides: every event of it, views, events of other
	// types and poison events alike, so that the runs a partition has applied stay contiguous (a
	// poison event left out would leave a hole for ever). A poison event replayed after a fix is
	// counted through ApplyReplayedPoison, which does not depend on these sets.
	Seqs  Ranges
	Views []View
	// Enqueued is the latest enqueued time of the batch's events: the partition's progress.
	Enqueued time.Time
}

// Aggregate is the view counts of one partition in one event-time minute (container trendAggregates,
// pk "agg|<minute>", id "p<partition>"), so the materializer reads a minute of every partition with
// one single-partition query.
type Aggregate struct {
	ID        string    `json:"id"`
	PK        string    `json:"pk"`
	Partition string    `json:"partition"`
	Minute    time.Time `json:"minute"`
	// Applied are the sequence numbers already applied; MaxSeq is the highest of them.
	Applied    Ranges           `json:"applied"`
	MaxSeq     int64            `json:"maxSeq"`
	Views      int64            `json:"views"`
	Products   map[string]int64 `json:"products"`
	Categories map[string]int64 `json:"categories,omitempty"`
	// ProductCategory is each product's category (the smallest name when clicks disagree, so the
	// choice does not depend on arrival order).
	ProductCategory map[string]string `json:"productCategory,omitempty"`
}

// Progress is one partition's position (container trendAggregates, pk "progress", id "p<partition>"):
// what the closed-minute rule and the late-event metric need.
//
// Its size is bounded whatever the run time and the poison rate (docs/trends.md, "Bounded state"):
// Applied keeps at most MaxProgressRanges runs, Marks one per MarkInterval over the reopen horizon,
// Reopened at most MaxReopened entries. Applied means "every event in it is decided": its batch
// was applied to every minute it touched. It may hold less than that (Coarsen drops inner runs when
// there are too many holes, which only costs metric precision and compaction), and it holds more
// only where that cannot change a live minute (runs older than the reopen horizon, see Marks).
type Progress struct {
	ID        string `json:"id"`
	PK        string `json:"pk"`
	Partition string `json:"partition"`
	Applied   Ranges `json:"applied"`
	MaxSeq    int64  `json:"maxSeq"`
	// Marks sample (sequence number, enqueued time) pairs, one per MarkInterval. Event Hubs numbers a
	// partition's events in enqueue order, so every event at or below a mark was enqueued at or
	// before it; once a mark is older than the reopen horizon no such event can count in a minute any
	// more (it would be expired), and every hole below it is filled.
	Marks []Mark `json:"marks,omitempty"`
	// Watermark is the latest enqueued time applied; UpdatedAt is when (wall clock) it last advanced.
	Watermark time.Time `json:"watermark"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Cumulative counters (metrics): views counted in a minute, views later than the allowed lateness,
	// views older than the reopen horizon (replayed too late).
	Views   int64 `json:"views"`
	Late    int64 `json:"late"`
	Expired int64 `json:"expired"`
	// Reopened lists minutes that took counts after they may already have been closed (replayed
	// parked events, a partition back from being stuck), for the materializer to merge again. Each
	// entry carries the revision (ReopenRev, one more per entry written) that last touched it, so the
	// materializer knows which it has handled whatever the sequence numbers involved.
	Reopened  []Reopen `json:"reopened,omitempty"`
	ReopenRev int64    `json:"reopenRev,omitempty"`
}

// Reopen is a run of minutes [Minute, Through] that changed after they may have closed, and the
// revision that last touched one of them (Through is zero for a single minute).
type Reopen struct {
	Minute  time.Time `json:"minute"`
	Through time.Time `json:"through,omitzero"`
	Rev     int64     `json:"rev"`
}

// last is the run's last minute.
func (r Reopen) last() time.Time {
	if r.Through.IsZero() || r.Through.Before(r.Minute) {
		return r.Minute
	}
	return r.Through
}

// Mark is an event's sequence number and enqueued time (see Progress.Marks).
type Mark struct {
	Seq      int64     `json:"seq"`
	Enqueued time.Time `json:"enqueued"`
}

// Bounds of a Progress document.
const (
	// MaxProgressRanges bounds Progress.Applied. Holes come only from parked batches not replayed yet;
	// consecutive parked batches make one hole, so this many runs is a long run of separate outages.
	MaxProgressRanges = 32
	// MaxReopened bounds Progress.Reopened: neighbouring runs are merged (the materializer then merges
	// a few minutes more than needed, which is harmless), never dropped.
	MaxReopened = 16
	// MarkInterval is the spacing of Progress.Marks in enqueued time.
	MarkInterval = 2 * time.Hour
)

// Stores are the documents the service reads and writes. Aggregates and Progress live in the Cosmos
// container trendAggregates; Totals, Snapshots and State in trendSnapshots (all partition key /pk).
type Stores struct {
	Aggregates docstore.Collection[Aggregate]
	Progress   docstore.Collection[Progress]
	Totals     docstore.Collection[Totals]
	Snapshots  docstore.Collection[Snapshot]
	State      docstore.Collection[MaterializerState]
}

// Service counts views, materializes trending and serves it.
type Service struct {
	Stores
	Config Config
	Now    func() time.Time
}

func (s *Service) cfg() Config { return s.Config.withDefaults() }

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// ApplyStats counts one Apply.
type ApplyStats struct {
	Views      int // counted in a minute now
	Duplicates int // already applied before (a replay)
	Late       int // later than the allowed lateness: counted in the Late metric only
	Expired    int // older than the reopen horizon: counted in the Expired metric only
	Minutes    int // aggregates touched
	Reopened   int // minutes that changed after they may have closed
	Writes     int
	Conflicts  int
}

// Classify says where a view is counted: in the minute of its event time (ok), as late, or as expired.
// Lateness is the enqueued time minus the event time, so the decision is the same whenever the event
// is processed. An event time after the enqueued time (a client clock running ahead) is clamped to the
// enqueued time.
func (c Config) Classify(v View, now time.Time) (minute time.Time, late, expired bool) {
	c = c.withDefaults()
	t := v.Time
	if !v.Enqueued.IsZero() {
		if v.Enqueued.Sub(v.Time) > c.AllowedLateness {
			return time.Time{}, true, false
		}
		if v.Time.After(v.Enqueued) {
			t = v.Enqueued
		}
	}
	m := Minute(t)
	if m.Before(Minute(now).Add(-c.ReopenHorizon)) {
		return time.Time{}, false, true
	}
	return m, false, false
}

// Apply counts a batch: one conditional write per minute touched (only if something changed), then one
// for the partition's progress. Any order of batches, and any replay, gives the same counts. On a
// store error the first error is returned after every minute was attempted; the caller fails the
// invocation so the host retries (idempotent), and parks the batch on the last retry.
func (s *Service) Apply(ctx context.Context, b Batch) (ApplyStats, error) {
	var st ApplyStats
	if b.Partition == "" {
		return st, fmt.Errorf("trends.Apply: %w: batch without a partition id", ErrInvalid)
	}
	cfg := s.cfg()
	now := s.now()
	byMinute := map[time.Time][]View{}
	var late, expired, counted []int64
	for _, v := range b.Views {
		if v.Seq < 0 {
			return st, fmt.Errorf("trends.Apply(%s): %w: view without a sequence number", b.Partition, ErrInvalid)
		}
		m, isLate, isExpired := cfg.Classify(v, now)
		switch {
		case isLate:
			late = append(late, v.Seq)
		case isExpired:
			expired = append(expired, v.Seq)
		default:
			byMinute[m] = append(byMinute[m], v)
			counted = append(counted, v.Seq)
		}
	}
	// Every view is decided by this batch, whatever the caller put in Seqs.
	b.Seqs = b.Seqs.Union(RangesOf(slices.Concat(late, expired, counted)...))
	// The partition's progress is read first: what it has decided lets every aggregate written below
	// fill the holes of its own Applied (see Aggregate.with). It is written last, with this ETag.
	prog, err := s.readProgress(ctx, b.Partition)
	if err != nil {
		return st, err
	}
	minutes := slices.SortedFunc(maps.Keys(byMinute), func(a, b time.Time) int { return a.Compare(b) })
	st.Minutes = len(minutes)
	var first error
	var reopened []time.Time
	for _, m := range minutes {
		applied, dup, wrote, conflicts, err := s.applyMinute(ctx, cfg, b.Partition, m, byMinute[m], b.Seqs, prog.doc.Applied)
		st.Views += applied
		st.Duplicates += dup
		st.Conflicts += conflicts
		if wrote {
			st.Writes++
		}
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if s.mayBeClosed(cfg, m, now) {
			reopened = append(reopened, m)
		}
	}
	if first != nil {
		// The progress must not move past views that are not applied: the closed-minute rule trusts it.
		return st, first
	}
	st.Reopened = len(reopened)
	d := progressDelta{seqs: b.Seqs, enqueued: b.Enqueued, late: late, expired: expired, counted: counted, reopened: reopened}
	wrote, conflicts, lateNew, expiredNew, err := s.applyProgress(ctx, cfg, b.Partition, prog, d, now)
	st.Conflicts += conflicts
	if wrote {
		st.Writes++
	}
	st.Late, st.Expired = lateNew, expiredNew
	return st, err
}

// mayBeClosed: a minute that could already be closed (its end plus the lateness has passed, with a
// minute of margin for clock skew between instances) is merged again by the materializer when it
// takes counts.
func (s *Service) mayBeClosed(cfg Config, m, now time.Time) bool {
	return !now.Before(m.Add(cfg.AllowedLateness))
}

// ApplyReplayedPoison counts the views of events that were dead-lettered as poison and decode now
// (a replay after a fix). Their sequence numbers were decided when they were dead-lettered (Batch.Seqs
// holds poison events too), so the aggregates' Applied sets cannot tell whether they were counted;
// instead each view is counted in a document of its own (id "p<partition>-<sequence number>" in its
// minute's aggregate partition), created only if it does not exist: a second replay of the same event
// finds it and counts nothing. The materializer sums every document of a minute, so these add to the
// partition's aggregate like any other. Late and expired views are not counted (nor in the metrics:
// their events were decided long ago).
func (s *Service) ApplyReplayedPoison(ctx context.Context, b Batch) (ApplyStats, error) {
	var st ApplyStats
	if b.Partition == "" {
		return st, fmt.Errorf("trends.ApplyReplayedPoison: %w: batch without a partition id", ErrInvalid)
	}
	cfg := s.cfg()
	now := s.now()
	var reopened []time.Time
	created := 0
	for _, v := range b.Views {
		if v.Seq < 0 {
			return st, fmt.Errorf("trends.ApplyReplayedPoison(%s): %w: view without a sequence number", b.Partition, ErrInvalid)
		}
		m, isLate, isExpired := cfg.Classify(v, now)
		if isLate || isExpired {
			continue
		}
		st.Minutes++
		doc := Aggregate{ID: replayedID(b.Partition, v.Seq), PK: aggregatePK(m), Partition: b.Partition, Minute: m, MaxSeq: -1}
		doc, _, _ = doc.with([]View{v}, RangesOf(v.Seq), nil)
		_, err := s.Aggregates.Put(ctx, doc.PK, doc.ID, doc, docstore.PutOptions{IfNoneMatch: true, TTL: cfg.AggregateTTL})
		switch {
		case errors.Is(err, docstore.ErrConflict):
			st.Duplicates++
			continue
		case err != nil:
			return st, fmt.Errorf("trends.ApplyReplayedPoison(%s, %d): %w", b.Partition, v.Seq, err)
		}
		created++
		st.Writes++
		if s.mayBeClosed(cfg, m, now) {
			reopened = append(reopened, m)
		}
	}
	st.Views, st.Reopened = created, len(reopened)
	if created == 0 {
		return st, nil
	}
	prog, err := s.readProgress(ctx, b.Partition)
	if err != nil {
		return st, err
	}
	wrote, conflicts, _, _, err := s.applyProgress(ctx, cfg, b.Partition, prog, progressDelta{seqs: b.Seqs, views: created, reopened: reopened}, now)
	st.Conflicts += conflicts
	if wrote {
		st.Writes++
	}
	return st, err
}

// replayedID is the document id of a replayed poison view (see ApplyReplayedPoison).
func replayedID(partition string, seq int64) string {
	return partitionID(partition) + "-" + strconv.FormatInt(seq, 10)
}

// applyMinute applies views (all of minute m) to the partition's aggregate of m.
func (s *Service) applyMinute(ctx context.Context, cfg Config, partition string, m time.Time, views []View, seqs, decided Ranges) (applied, dup int, wrote bool, conflicts int, err error) {
	pk, id := aggregatePK(m), partitionID(partition)
	for range cfg.MaxAttempts {
		cur, etag, err := s.Aggregates.Get(ctx, pk, id)
		exists := err == nil
		if err != nil && !errors.Is(err, docstore.ErrNotFound) {
			return 0, 0, false, conflicts, fmt.Errorf("trends.Apply(%s, %s): %w", partition, minuteKey(m), err)
		}
		if !exists {
			cur = Aggregate{ID: id, PK: pk, Partition: partition, Minute: m, MaxSeq: -1}
		}
		next, n, d := cur.with(views, seqs, decided)
		if n == 0 && cur.Applied.Union(seqs).Equal(cur.Applied) {
			return 0, d, false, conflicts, nil
		}
		opts := docstore.PutOptions{IfMatch: etag, TTL: cfg.AggregateTTL}
		if !exists {
			opts = docstore.PutOptions{IfNoneMatch: true, TTL: cfg.AggregateTTL}
		}
		_, err = s.Aggregates.Put(ctx, pk, id, next, opts)
		if err == nil {
			return n, d, true, conflicts, nil
		}
		if !errors.Is(err, docstore.ErrConflict) {
			return 0, 0, false, conflicts, fmt.Errorf("trends.Apply(%s, %s): %w", partition, minuteKey(m), err)
		}
		conflicts++
	}
	return 0, 0, false, conflicts, fmt.Errorf("trends.Apply(%s, %s): still conflicting after %d attempts: %w", partition, minuteKey(m), cfg.MaxAttempts, docstore.ErrConflict)
}

// with returns a copy of a with the views it has not applied yet counted and seqs recorded as
// applied, the number counted and the number skipped as duplicates. a is not modified (stores may
// hand out shared values).
//
// decided is the partition's Progress.Applied: every event in it belongs to a batch that was applied
// to every minute it touched, so an event in it that is not in a.Applied is not a view of this
// minute, and the hole it sits in can be filled. Only the part of decided inside a's own span is
// taken, so the aggregate's runs stay few: holes remain only for parked batches not replayed yet
// within the minute's span (a few minutes of sequence numbers).
func (a Aggregate) with(views []View, seqs, decided Ranges) (Aggregate, int, int) {
	next := a
	next.Products = maps.Clone(a.Products)
	next.Categories = maps.Clone(a.Categories)
	next.ProductCategory = maps.Clone(a.ProductCategory)
	if next.Products == nil {
		next.Products = map[string]int64{}
	}
	n, dup := 0, 0
	for _, v := range views {
		if a.Applied.Contains(v.Seq) {
			dup++
			continue
		}
		n++
		next.Views++
		next.Products[v.ProductID]++
		if v.Category != "" {
			if next.Categories == nil {
				next.Categories = map[string]int64{}
			}
			next.Categories[v.Category]++
			if next.ProductCategory == nil {
				next.ProductCategory = map[string]string{}
			}
			next.ProductCategory[v.ProductID] = pickCategory(next.ProductCategory[v.ProductID], v.Category)
		}
	}
	applied := a.Applied.Union(seqs)
	if len(applied) > 1 && len(decided) > 0 {
		applied = applied.Union(decided.Within(applied.Min(), applied.Max()))
	}
	next.Applied = applied
	next.MaxSeq = next.Applied.Max()
	return next, n, dup
}

// pickCategory merges two category names for one product deterministically (the smallest non-empty).
func pickCategory(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return min(a, b)
}

// progressRead is a partition's progress as read, with what the conditional write needs.
type progressRead struct {
	doc    Progress
	etag   docstore.ETag
	exists bool
}

func (s *Service) readProgress(ctx context.Context, partition string) (progressRead, error) {
	id := partitionID(partition)
	cur, etag, err := s.Progress.Get(ctx, progressPK, id)
	if errors.Is(err, docstore.ErrNotFound) {
		return progressRead{doc: Progress{ID: id, PK: progressPK, Partition: partition, MaxSeq: -1}}, nil
	} else if err != nil {
		return progressRead{}, fmt.Errorf("trends.Apply(%s) progress: %w", partition, err)
	}
	return progressRead{doc: cur, etag: etag, exists: true}, nil
}

// progressDelta is what one Apply (or ApplyReplayedPoison) adds to a partition's progress.
type progressDelta struct {
	seqs                   Ranges
	enqueued               time.Time // the batch's latest enqueued time (zero: unknown)
	late, expired, counted []int64   // views by outcome, counted in the metrics if not decided before
	views                  int       // views counted outside seqs (replayed poison)
	reopened               []time.Time
}

func (s *Service) applyProgress(ctx context.Context, cfg Config, partition string, r progressRead, d progressDelta, now time.Time) (wrote bool, conflicts, lateNew, expiredNew int, err error) {
	for attempt := range cfg.MaxAttempts {
		if attempt > 0 {
			if r, err = s.readProgress(ctx, partition); err != nil {
				return false, conflicts, 0, 0, err
			}
		}
		cur := r.doc
		next := cur
		next.Applied = cur.Applied.Union(d.seqs)
		if d.enqueued.After(next.Watermark) {
			// UpdatedAt tells the closed-minute rule that the partition's consumer is moving; a
			// replay of old parked events does not move the watermark and must not look like that.
			next.Watermark = d.enqueued.UTC()
			next.UpdatedAt = now
		}
		if next.Applied.Equal(cur.Applied) && next.Watermark.Equal(cur.Watermark) && len(d.reopened) == 0 && d.views == 0 {
			return false, conflicts, 0, 0, nil // the whole batch was applied before
		}
		lateNew, expiredNew = 0, 0
		views := d.views
		for _, seq := range d.counted {
			if !cur.Applied.Contains(seq) {
				views++
			}
		}
		for _, seq := range d.late {
			if !cur.Applied.Contains(seq) {
				lateNew++
			}
		}
		for _, seq := range d.expired {
			if !cur.Applied.Contains(seq) {
				expiredNew++
			}
		}
		next.Late += int64(lateNew)
		next.Expired += int64(expiredNew)
		next.Views += int64(views)
		if len(d.reopened) > 0 {
			next.ReopenRev++
			add := make([]Reopen, len(d.reopened))
			for i, m := range d.reopened {
				add[i] = Reopen{Minute: m, Rev: next.ReopenRev}
			}
			next.Reopened = mergeReopened(cur.Reopened, add, Minute(now).Add(-cfg.ReopenHorizon))
		}
		next.Marks, next.Applied = compactProgress(cfg, cur.Marks, next.Applied, d, now)
		next.MaxSeq = next.Applied.Max()
		opts := docstore.PutOptions{IfMatch: r.etag, TTL: cfg.ProgressTTL}
		if !r.exists {
			opts = docstore.PutOptions{IfNoneMatch: true, TTL: cfg.ProgressTTL}
		}
		_, err = s.Progress.Put(ctx, progressPK, cur.ID, next, opts)
		if err == nil {
			return true, conflicts, lateNew, expiredNew, nil
		}
		if !errors.Is(err, docstore.ErrConflict) {
			return false, conflicts, 0, 0, fmt.Errorf("trends.Apply(%s) progress: %w", partition, err)
		}
		conflicts++
	}
	return false, conflicts, 0, 0, fmt.Errorf("trends.Apply(%s) progress: still conflicting after %d attempts: %w", partition, cfg.MaxAttempts, docstore.ErrConflict)
}

// compactProgress keeps a progress document's Applied and Marks within their bounds. It adds a mark
// for the batch (at most one per MarkInterval), fills every hole below the newest mark that is older
// than the reopen horizon (no event there can count in a minute any more: it would be expired, so a
// parked event replayed from there is counted as a duplicate instead of as expired, in the metrics
// only), and then drops inner runs beyond MaxProgressRanges (a subset: safe, see Progress).
func compactProgress(cfg Config, marks []Mark, applied Ranges, d progressDelta, now time.Time) ([]Mark, Ranges) {
	if !d.enqueued.IsZero() && len(d.seqs) > 0 {
		// Rounded up to the second: later than the truth is the safe side of a mark, and shorter.
		enq := d.enqueued.UTC()
		if r := enq.Truncate(time.Second); !r.Equal(enq) {
			enq = r.Add(time.Second)
		}
		m := Mark{Seq: d.seqs.Max(), Enqueued: enq}
		if n := len(marks); n == 0 || (m.Seq > marks[n-1].Seq && m.Enqueued.Sub(marks[n-1].Enqueued) >= MarkInterval) {
			marks = append(slices.Clip(marks), m)
		}
	}
	horizon := Minute(now).Add(-cfg.ReopenHorizon)
	expiredThrough := int64(-1)
	keep := 0
	for i, m := range marks {
		if Minute(m.Enqueued).Before(horizon) {
			expiredThrough, keep = m.Seq, i+1
		}
	}
	if expiredThrough >= 0 {
		marks = marks[keep:]
		if len(applied) > 1 && applied.Within(0, expiredThrough).Len() > 1 {
			applied = applied.Union(Ranges{{First: applied.Min(), Last: expiredThrough}})
		}
	}
	if len(marks) == 0 {
		marks = nil
	}
	return marks, applied.Coarsen(MaxProgressRanges)
}

// mergeReopened adds entries and keeps the list within MaxReopened: runs of minutes that overlap or
// touch are merged (keeping the highest revision), minutes older than horizon are dropped, and while
// there are too many runs the two closest are merged. Merging never loses a minute to re-merge; it
// can only add a few minutes between two runs, which the materializer merges again harmlessly.
func mergeReopened(cur, add []Reopen, horizon time.Time) []Reopen {
	if len(add) == 0 && len(cur) == 0 {
		return nil
	}
	var all []Reopen
	for _, r := range slices.Concat(cur, add) {
		last := r.last()
		if last.Before(horizon) {
			continue
		}
		if r.Minute.Before(horizon) {
			r.Minute = horizon
		}
		r.Through = last
		all = append(all, r)
	}
	slices.SortFunc(all, func(a, b Reopen) int { return a.Minute.Compare(b.Minute) })
	var out []Reopen
	for _, r := range all {
		if n := len(out); n > 0 && !r.Minute.After(out[n-1].Through.Add(time.Minute)) {
			if r.Through.After(out[n-1].Through) {
				out[n-1].Through = r.Through
			}
			out[n-1].Rev = max(out[n-1].Rev, r.Rev)
			continue
		}
		out = append(out, r)
	}
	for len(out) > MaxReopened {
		closest := 0
		for i := 1; i < len(out)-1; i++ {
			if out[i+1].Minute.Sub(out[i].Through) < out[closest+1].Minute.Sub(out[closest].Through) {
				closest = i
			}
		}
		out[closest].Through = out[closest+1].Through
		out[closest].Rev = max(out[closest].Rev, out[closest+1].Rev)
		out = slices.Delete(out, closest+1, closest+2)
	}
	for i := range out {
		if out[i].Through.Equal(out[i].Minute) {
			out[i].Through = time.Time{}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
