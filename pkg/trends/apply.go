package trends

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	// Seqs are the sequence numbers this batch decides: its views and its events that are not views
	// (other types). Poison events are left out, so that replaying one after a fix still counts it.
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
type Progress struct {
	ID        string `json:"id"`
	PK        string `json:"pk"`
	Partition string `json:"partition"`
	Applied   Ranges `json:"applied"`
	MaxSeq    int64  `json:"maxSeq"`
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

// Reopen is a minute that changed after it may have closed, and the revision that last did it.
type Reopen struct {
	Minute time.Time `json:"minute"`
	Rev    int64     `json:"rev"`
}

// maxReopened bounds Progress.Reopened (oldest dropped first).
const maxReopened = 256

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
	minutes := slices.SortedFunc(maps.Keys(byMinute), func(a, b time.Time) int { return a.Compare(b) })
	st.Minutes = len(minutes)
	var first error
	var reopened []time.Time
	for _, m := range minutes {
		applied, dup, wrote, conflicts, err := s.applyMinute(ctx, cfg, b.Partition, m, byMinute[m], b.Seqs)
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
		// A minute that could already be closed (its end plus the lateness has passed, with a minute of
		// margin for clock skew between instances) is merged again by the materializer.
		if !now.Before(m.Add(cfg.AllowedLateness)) {
			reopened = append(reopened, m)
		}
	}
	if first != nil {
		// The progress must not move past views that are not applied: the closed-minute rule trusts it.
		return st, first
	}
	st.Reopened = len(reopened)
	wrote, conflicts, lateNew, expiredNew, err := s.applyProgress(ctx, cfg, b, late, expired, counted, reopened, now)
	st.Conflicts += conflicts
	if wrote {
		st.Writes++
	}
	st.Late, st.Expired = lateNew, expiredNew
	return st, err
}

// applyMinute applies views (all of minute m) to the partition's aggregate of m.
func (s *Service) applyMinute(ctx context.Context, cfg Config, partition string, m time.Time, views []View, seqs Ranges) (applied, dup int, wrote bool, conflicts int, err error) {
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
		next, n, d := cur.with(views, seqs)
		if n == 0 && next.Applied.Equal(cur.Applied) {
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
func (a Aggregate) with(views []View, seqs Ranges) (Aggregate, int, int) {
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
	next.Applied = a.Applied.Union(seqs)
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

func (s *Service) applyProgress(ctx context.Context, cfg Config, b Batch, late, expired, counted []int64, reopened []time.Time, now time.Time) (wrote bool, conflicts, lateNew, expiredNew int, err error) {
	id := partitionID(b.Partition)
	for range cfg.MaxAttempts {
		cur, etag, err := s.Progress.Get(ctx, progressPK, id)
		exists := err == nil
		if err != nil && !errors.Is(err, docstore.ErrNotFound) {
			return false, conflicts, 0, 0, fmt.Errorf("trends.Apply(%s) progress: %w", b.Partition, err)
		}
		if !exists {
			cur = Progress{ID: id, PK: progressPK, Partition: b.Partition, MaxSeq: -1}
		}
		next := cur
		next.Applied = cur.Applied.Union(b.Seqs)
		if b.Enqueued.After(next.Watermark) {
			// UpdatedAt tells the closed-minute rule that the partition's consumer is moving; a
			// replay of old parked events does not move the watermark and must not look like that.
			next.Watermark = b.Enqueued.UTC()
			next.UpdatedAt = now
		}
		if next.Applied.Equal(cur.Applied) && next.Watermark.Equal(cur.Watermark) && len(reopened) == 0 {
			return false, conflicts, 0, 0, nil // the whole batch was applied before
		}
		lateNew, expiredNew = 0, 0
		views := 0
		for _, seq := range counted {
			if !cur.Applied.Contains(seq) {
				views++
			}
		}
		for _, seq := range late {
			if !cur.Applied.Contains(seq) {
				lateNew++
			}
		}
		for _, seq := range expired {
			if !cur.Applied.Contains(seq) {
				expiredNew++
			}
		}
		next.MaxSeq = next.Applied.Max()
		next.Late += int64(lateNew)
		next.Expired += int64(expiredNew)
		next.Views += int64(views)
		add := make([]Reopen, len(reopened))
		for i, m := range reopened {
			next.ReopenRev++
			add[i] = Reopen{Minute: m, Rev: next.ReopenRev}
		}
		next.Reopened = mergeReopened(cur.Reopened, add, now.Add(-cfg.ReopenHorizon))
		opts := docstore.PutOptions{IfMatch: etag, TTL: cfg.ProgressTTL}
		if !exists {
			opts = docstore.PutOptions{IfNoneMatch: true, TTL: cfg.ProgressTTL}
		}
		_, err = s.Progress.Put(ctx, progressPK, id, next, opts)
		if err == nil {
			return true, conflicts, lateNew, expiredNew, nil
		}
		if !errors.Is(err, docstore.ErrConflict) {
			return false, conflicts, 0, 0, fmt.Errorf("trends.Apply(%s) progress: %w", b.Partition, err)
		}
		conflicts++
	}
	return false, conflicts, 0, 0, fmt.Errorf("trends.Apply(%s) progress: still conflicting after %d attempts: %w", b.Partition, cfg.MaxAttempts, docstore.ErrConflict)
}

// mergeReopened adds entries (one per minute, the highest revision), drops minutes older than horizon
// and keeps the newest maxReopened.
func mergeReopened(cur, add []Reopen, horizon time.Time) []Reopen {
	if len(add) == 0 && len(cur) == 0 {
		return nil
	}
	by := make(map[time.Time]int64, len(cur)+len(add))
	for _, r := range slices.Concat(cur, add) {
		if r.Minute.Before(horizon) {
			continue
		}
		if rev, ok := by[r.Minute]; !ok || r.Rev > rev {
			by[r.Minute] = r.Rev
		}
	}
	out := make([]Reopen, 0, len(by))
	for m, rev := range by {
		out = append(out, Reopen{Minute: m, Rev: rev})
	}
	slices.SortFunc(out, func(a, b Reopen) int { return a.Minute.Compare(b.Minute) })
	if len(out) > maxReopened {
		out = out[len(out)-maxReopened:]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
