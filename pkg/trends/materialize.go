package trends

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// Spans of Totals.
const (
	SpanMinute = "minute"
	SpanHour   = "hour"
)

// Totals are the views of every partition in one minute (pk "min|<hour>", id "<minute>") or one hour
// (pk "hour|<day>", id "<hour>"), in container trendSnapshots. Minute totals exist for every minute
// the materializer covered, empty ones too, so a minute without any view reads as zero, not missing.
type Totals struct {
	ID              string            `json:"id"`
	PK              string            `json:"pk"`
	Span            string            `json:"span"`
	Start           time.Time         `json:"start"`
	Views           int64             `json:"views"`
	Products        map[string]int64  `json:"products,omitempty"`
	Categories      map[string]int64  `json:"categories,omitempty"`
	ProductCategory map[string]string `json:"productCategory,omitempty"`
	// Sources are the aggregates merged (document id -> its view count, which grows with every view it
	// applies), so an unchanged merge is not written again.
	Sources map[string]int64 `json:"sources,omitempty"`
	// Final: the minute was closed when merged (for an hour: every minute of it was).
	Final      bool      `json:"final"`
	ComputedAt time.Time `json:"computedAt"`
}

// Snapshot is one window's trending as of End (pk "snap|<window>|<end minute>", id "all" or
// "c-<category, base64url>"), in container trendSnapshots. It covers the whole minutes [End-W, End).
type Snapshot struct {
	ID         string        `json:"id"`
	PK         string        `json:"pk"`
	Window     Window        `json:"window"`
	Category   string        `json:"category,omitempty"`
	End        time.Time     `json:"end"`
	ComputedAt time.Time     `json:"computedAt"`
	Views      int64         `json:"views"`
	Top        []Entry       `json:"top"`
	Rising     []RisingEntry `json:"rising"`
	// On the "all" snapshot: the categories materialized with it, and whether some were left out.
	Categories          int  `json:"categories,omitempty"`
	CategoriesTruncated bool `json:"categoriesTruncated,omitempty"`
}

// MaterializerState is the materializer's cursor (pk "state", id "materializer").
type MaterializerState struct {
	ID string `json:"id"`
	PK string `json:"pk"`
	// MergedThrough: every minute up to and including it is merged final.
	MergedThrough time.Time `json:"mergedThrough"`
	// SnapshotThrough: the latest snapshot End written.
	SnapshotThrough time.Time `json:"snapshotThrough"`
	// Consumed: per partition, the highest Reopen.Rev already merged again.
	Consumed  map[string]int64 `json:"consumed,omitempty"`
	UpdatedAt time.Time        `json:"updatedAt"`
}

const stateID = "materializer"

func snapshotID(category string) string {
	if category == "" {
		return "all"
	}
	// Cosmos DB ids may not hold / \ ? #; base64url keeps any name usable and reversible.
	return "c-" + base64.RawURLEncoding.EncodeToString([]byte(category))
}

// ClosedThrough returns the latest minute that is closed at now. A minute M is closed when every
// partition that applied a batch within IdleTimeout has a watermark (latest enqueued time applied) at
// or after M's end plus AllowedLateness; partitions idle for longer are not waited for. Anything a
// waited-for partition applies later is enqueued after that bound, so it is late for M.
func (c Config) ClosedThrough(progress []Progress, now time.Time) time.Time {
	c = c.withDefaults()
	bound := now.UTC()
	for _, p := range progress {
		if now.Sub(p.UpdatedAt) >= c.IdleTimeout {
			continue
		}
		if p.Watermark.Before(bound) {
			bound = p.Watermark.UTC()
		}
	}
	return Minute(bound.Add(-c.AllowedLateness)).Add(-time.Minute)
}

// MaterializeStats counts one Materialize run.
type MaterializeStats struct {
	Merged, Reopened, Hours, Snapshots int
	Writes, Reads                      int
	MergedThrough, ClosedThrough       time.Time
	SnapshotThrough                    time.Time
}

// Materialize is the timer's job: it merges the per-partition aggregates of every minute not final
// yet (and of reopened minutes) into minute totals, recomputes the hour totals they belong to, and
// writes the snapshots of every window ending at each minute boundary since the last run up to now.
// A failure leaves the cursor where it was; the next run does the work again (every write is a pure
// function of the aggregates, so repeating it is harmless).
func (s *Service) Materialize(ctx context.Context) (MaterializeStats, error) {
	var st MaterializeStats
	cfg := s.cfg()
	now := s.now()
	cur := Minute(now)
	state, etag, err := s.State.Get(ctx, statePK, stateID)
	exists := err == nil
	if err != nil && !errors.Is(err, docstore.ErrNotFound) {
		return st, wrap("Materialize", err)
	}
	st.Reads++
	if !exists {
		start := cur.Add(-cfg.AllowedLateness - time.Hour)
		state = MaterializerState{ID: stateID, PK: statePK, MergedThrough: start, SnapshotThrough: cur.Add(-time.Minute)}
	}
	var progress []Progress
	err = s.Progress.List(ctx, progressPK, func(id string, p Progress, _ docstore.ETag) error {
		progress = append(progress, p)
		return nil
	})
	if err != nil {
		return st, wrap("Materialize", err)
	}
	st.Reads += len(progress)
	closed := cfg.ClosedThrough(progress, now)
	st.ClosedThrough = closed

	// Minutes to merge: everything not final yet (bounded per run), and minutes reopened since.
	horizon := cur.Add(-cfg.ReopenHorizon)
	from := state.MergedThrough.Add(time.Minute)
	if from.Before(horizon) {
		from = horizon
	}
	to := from.Add(time.Duration(cfg.MaxCatchUpMinutes-1) * time.Minute)
	if to.After(cur) {
		to = cur
	}
	todo := map[time.Time]bool{}
	for m := from; !m.After(to); m = m.Add(time.Minute) {
		todo[m] = true
	}
	consumed := maps.Clone(state.Consumed)
	if consumed == nil {
		consumed = map[string]int64{}
	}
	for _, p := range progress {
		for _, r := range p.Reopened {
			if r.Rev <= state.Consumed[p.Partition] {
				continue
			}
			for m := r.Minute; !m.After(r.last()); m = m.Add(time.Minute) {
				if !m.Before(horizon) && !m.After(cur) {
					if !todo[m] {
						st.Reopened++
					}
					todo[m] = true
				}
			}
			consumed[p.Partition] = max(consumed[p.Partition], r.Rev)
		}
	}
	c := &cache{s: s, ctx: ctx, minutes: map[string]map[time.Time]Totals{}, hours: map[time.Time]Totals{}}
	hours := map[time.Time]bool{}
	for _, m := range slices.SortedFunc(maps.Keys(todo), func(a, b time.Time) int { return a.Compare(b) }) {
		wrote, err := s.mergeMinute(ctx, c, cfg, m, !m.After(closed), now)
		if err != nil {
			st.Reads, st.Writes = st.Reads+c.reads, st.Writes+c.writes
			return st, err
		}
		st.Merged++
		if wrote {
			hours[m.Truncate(time.Hour)] = true
		}
	}
	for _, h := range slices.SortedFunc(maps.Keys(hours), func(a, b time.Time) int { return a.Compare(b) }) {
		if err := s.mergeHour(ctx, c, cfg, h, now); err != nil {
			st.Reads, st.Writes = st.Reads+c.reads, st.Writes+c.writes
			return st, err
		}
		st.Hours++
	}

	// Snapshots end at minute boundaries: the window ending at cur covers the whole minutes before it.
	snapFrom := state.SnapshotThrough.Add(time.Minute)
	if earliest := cur.Add(-time.Duration(cfg.MaxCatchUpSnapshots-1) * time.Minute); snapFrom.Before(earliest) {
		snapFrom = earliest
	}
	for end := snapFrom; !end.After(cur); end = end.Add(time.Minute) {
		n, err := s.writeSnapshots(ctx, c, cfg, end, now)
		st.Snapshots += n
		if err != nil {
			st.Reads, st.Writes = st.Reads+c.reads, st.Writes+c.writes
			return st, err
		}
		state.SnapshotThrough = end
	}

	// The merge cursor advances over final minutes only.
	mergedThrough := state.MergedThrough
	if last := minTime(to, closed); last.After(mergedThrough) {
		mergedThrough = last
	}
	if mergedThrough.Before(from.Add(-time.Minute)) {
		// The cursor was older than the reopen horizon: minutes before from are not merged any more.
		mergedThrough = from.Add(-time.Minute)
	}
	state.MergedThrough = mergedThrough
	state.Consumed = consumed
	state.UpdatedAt = now
	opts := docstore.PutOptions{IfMatch: etag}
	if !exists {
		opts = docstore.PutOptions{IfNoneMatch: true}
	}
	if _, err := s.State.Put(ctx, statePK, stateID, state, opts); err != nil {
		st.Reads, st.Writes = st.Reads+c.reads, st.Writes+c.writes
		return st, wrap("Materialize state", err)
	}
	st.Reads, st.Writes = st.Reads+c.reads, st.Writes+c.writes+1
	st.MergedThrough, st.SnapshotThrough = state.MergedThrough, state.SnapshotThrough
	return st, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// mergeMinute merges the aggregates of minute m into its totals, writing only when they changed.
func (s *Service) mergeMinute(ctx context.Context, c *cache, cfg Config, m time.Time, final bool, now time.Time) (bool, error) {
	t := Totals{ID: minuteKey(m), PK: minuteTotalsPK(m), Span: SpanMinute, Start: m, Final: final, Sources: map[string]int64{}}
	var sum Counts
	err := s.Aggregates.List(ctx, aggregatePK(m), func(id string, a Aggregate, _ docstore.ETag) error {
		c.reads++
		sum.add(a.Views, a.Products, a.Categories, a.ProductCategory)
		t.Sources[id] = a.Views // a partition's aggregate, or a replayed poison view (ApplyReplayedPoison)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("trends.Materialize(%s): %w", minuteKey(m), err)
	}
	t.Views, t.Products, t.Categories, t.ProductCategory = sum.Views, sum.Products, sum.Categories, sum.ProductCategory
	old, ok, err := c.minute(m)
	if err != nil {
		return false, err
	}
	if ok && old.Final == t.Final && maps.Equal(old.Sources, t.Sources) {
		return false, nil
	}
	t.ComputedAt = now
	if _, err := s.Totals.Put(ctx, t.PK, t.ID, t, docstore.PutOptions{TTL: cfg.TotalsTTL}); err != nil {
		return false, fmt.Errorf("trends.Materialize(%s): %w", minuteKey(m), err)
	}
	c.writes++
	c.setMinute(t)
	return true, nil
}

// mergeHour recomputes the totals of hour h from its minute totals.
func (s *Service) mergeHour(ctx context.Context, c *cache, cfg Config, h time.Time, now time.Time) error {
	mins, err := c.hourMinutes(h)
	if err != nil {
		return err
	}
	t := Totals{ID: hourKey(h), PK: hourTotalsPK(h), Span: SpanHour, Start: h, ComputedAt: now, Final: len(mins) == 60}
	var sum Counts
	for _, m := range mins {
		sum.add(m.Views, m.Products, m.Categories, m.ProductCategory)
		t.Final = t.Final && m.Final
	}
	t.Views, t.Products, t.Categories, t.ProductCategory = sum.Views, sum.Products, sum.Categories, sum.ProductCategory
	if _, err := s.Totals.Put(ctx, t.PK, t.ID, t, docstore.PutOptions{TTL: cfg.TotalsTTL}); err != nil {
		return fmt.Errorf("trends.Materialize(hour %s): %w", hourKey(h), err)
	}
	c.writes++
	c.hours[h] = t
	return nil
}

// writeSnapshots writes every window's snapshot ending at end: the whole site and each category.
func (s *Service) writeSnapshots(ctx context.Context, c *cache, cfg Config, end, now time.Time) (int, error) {
	n := 0
	for _, w := range Windows {
		d := w.Duration()
		cur, err := c.sum(end.Add(-d), end)
		if err != nil {
			return n, err
		}
		prev, err := c.sum(end.Add(-2*d), end.Add(-d))
		if err != nil {
			return n, err
		}
		cats, truncated := topCategories(&cur, &prev, cfg.MaxCategories)
		curBy, prevBy := cur.byCategory(), prev.byCategory()
		put := func(category string, views map[string]int64, previous map[string]int64, total int64) error {
			snap := Snapshot{ID: snapshotID(category), PK: snapshotPK(w, end), Window: w, Category: category, End: end,
				ComputedAt: now, Views: total, Top: Top(views, MaxLimit), Rising: Rising(views, previous, w.RisingFloor(), MaxLimit)}
			if category == "" {
				snap.Categories, snap.CategoriesTruncated = len(cats), truncated
			}
			if _, err := s.Snapshots.Put(ctx, snap.PK, snap.ID, snap, docstore.PutOptions{TTL: cfg.SnapshotTTL}); err != nil {
				return fmt.Errorf("trends.Materialize(snapshot %s %s %q): %w", w, minuteKey(end), category, err)
			}
			c.writes++
			n++
			return nil
		}
		if err := put("", cur.Products, prev.Products, cur.Views); err != nil {
			return n, err
		}
		for _, k := range cats {
			if err := put(k, curBy[k], prevBy[k], cur.Categories[k]); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// cache holds the totals one run reads, so overlapping windows read each document once.
type cache struct {
	s             *Service
	ctx           context.Context
	minutes       map[string]map[time.Time]Totals // by hour key
	hours         map[time.Time]Totals
	reads, writes int
}

func (c *cache) loadHour(h time.Time) (map[time.Time]Totals, error) {
	k := hourKey(h)
	if m, ok := c.minutes[k]; ok {
		return m, nil
	}
	m := map[time.Time]Totals{}
	err := c.s.Totals.List(c.ctx, minuteTotalsPK(h), func(id string, t Totals, _ docstore.ETag) error {
		c.reads++
		m[t.Start.UTC()] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trends.Materialize(minutes of %s): %w", k, err)
	}
	c.minutes[k] = m
	return m, nil
}

func (c *cache) minute(m time.Time) (Totals, bool, error) {
	hm, err := c.loadHour(m.Truncate(time.Hour))
	if err != nil {
		return Totals{}, false, err
	}
	t, ok := hm[m]
	return t, ok, nil
}

func (c *cache) setMinute(t Totals) {
	if hm, ok := c.minutes[hourKey(t.Start)]; ok {
		hm[t.Start] = t
	}
}

func (c *cache) hourMinutes(h time.Time) ([]Totals, error) {
	hm, err := c.loadHour(h)
	if err != nil {
		return nil, err
	}
	return slices.Collect(maps.Values(hm)), nil
}

// hour returns the totals of a past hour: its document, or the sum of its minutes when the document
// does not exist (the materializer started within the hour).
func (c *cache) hour(h time.Time) (Totals, error) {
	if t, ok := c.hours[h]; ok {
		return t, nil
	}
	t, _, err := c.s.Totals.Get(c.ctx, hourTotalsPK(h), hourKey(h))
	c.reads++
	if errors.Is(err, docstore.ErrNotFound) {
		mins, err := c.hourMinutes(h)
		if err != nil {
			return Totals{}, err
		}
		var sum Counts
		for _, m := range mins {
			sum.add(m.Views, m.Products, m.Categories, m.ProductCategory)
		}
		t = Totals{Span: SpanHour, Start: h, Views: sum.Views, Products: sum.Products, Categories: sum.Categories, ProductCategory: sum.ProductCategory}
	} else if err != nil {
		return Totals{}, fmt.Errorf("trends.Materialize(hour %s): %w", hourKey(h), err)
	}
	c.hours[h] = t
	return t, nil
}

// sum adds the totals of the whole minutes [from, to): whole hours from hour totals, the rest from
// minute totals.
func (c *cache) sum(from, to time.Time) (Counts, error) {
	var out Counts
	out.add(0, nil, nil, nil)
	for t := from; t.Before(to); {
		if t.Equal(t.Truncate(time.Hour)) && !t.Add(time.Hour).After(to) {
			h, err := c.hour(t)
			if err != nil {
				return out, err
			}
			out.add(h.Views, h.Products, h.Categories, h.ProductCategory)
			t = t.Add(time.Hour)
			continue
		}
		m, ok, err := c.minute(t)
		if err != nil {
			return out, err
		}
		if ok {
			out.add(m.Views, m.Products, m.Categories, m.ProductCategory)
		}
		t = t.Add(time.Minute)
	}
	return out, nil
}
