package anomaly

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/events"
	"github.com/contoso/eventpipeline/pkg/trends"
)

// CloudEvent attributes of a detected anomaly.
const (
	TypeAnomalyDetected = "com.contoso.analytics.anomaly.detected"
	EventSource         = "/contoso/analytics"
)

// Series names and their subjects: "site" -> /traffic/site, "category/<name>" ->
// /traffic/category/<name, path-escaped>.
const (
	SiteSeries     = "site"
	categoryPrefix = "category/"
)

// CategorySeries is the series name of a category.
func CategorySeries(name string) string { return categoryPrefix + name }

// Subject is the CloudEvent subject of a series.
func Subject(series string) string {
	if name, ok := strings.CutPrefix(series, categoryPrefix); ok {
		return "/traffic/category/" + url.PathEscape(name)
	}
	return "/traffic/" + series
}

// EpisodeID is the deterministic CloudEvent id of the episode of series that opened at start: a
// re-run of the job over the same minutes publishes the same id, which consumers de-duplicate.
func EpisodeID(series string, start time.Time) string {
	return events.DeterministicID(TypeAnomalyDetected, series, start.UTC().Format(time.RFC3339))
}

// Data is the CloudEvent data of a detected anomaly.
type Data struct {
	Minute    time.Time `json:"minute"`
	Observed  float64   `json:"observed"`
	Expected  float64   `json:"expected"`
	Score     float64   `json:"score"`
	Direction string    `json:"direction"`
	Kind      string    `json:"kind"`
}

// Finding is an episode opened by a minute.
type Finding struct {
	Series    string
	Judgement Judgement
}

// Event is the CloudEvent of a finding. Every attribute is a function of the finding, so a re-run
// builds the identical event.
func (f Finding) Event() (event.Event, error) {
	j := f.Judgement
	e := event.New()
	e.SetID(j.Opened.ID)
	e.SetSource(EventSource)
	e.SetType(TypeAnomalyDetected)
	e.SetSubject(Subject(f.Series))
	e.SetTime(j.Minute)
	err := e.SetData(event.ApplicationJSON, Data{Minute: j.Minute, Observed: j.Observed, Expected: j.Expected,
		Score: j.Score, Direction: j.Opened.Direction, Kind: j.Opened.Kind})
	if err != nil {
		return e, fmt.Errorf("anomaly event %s: %w", f.Series, err)
	}
	return e, e.Validate()
}

// Detector judges the minutes of every series in memory: the site total and each category (at most
// MaxCategories, in order of first appearance; a category missing from a minute counts zero).
type Detector struct {
	Params        Params
	MaxCategories int
	Series        map[string]*Series
}

// Observe judges minute m for every series that has not judged it yet and returns the episodes it
// opened. byCategory may be nil.
func (d *Detector) Observe(m time.Time, total float64, byCategory map[string]float64) []Finding {
	if d.Series == nil {
		d.Series = map[string]*Series{}
	}
	var out []Finding
	judge := func(name string, x float64) {
		s := d.Series[name]
		if s == nil {
			s = NewSeries(seriesID(name), seriesPK, name)
			d.Series[name] = s
		}
		if !s.LastJudged.IsZero() && !m.After(s.LastJudged) {
			return
		}
		j := s.Judge(m, x, d.Params, func(start time.Time) string { return EpisodeID(name, start) })
		if j.Opened != nil {
			out = append(out, Finding{Series: name, Judgement: j})
		}
	}
	judge(SiteSeries, total)
	cats := 0
	for name := range d.Series {
		if strings.HasPrefix(name, categoryPrefix) {
			cats++
		}
	}
	for _, c := range slices.Sorted(maps.Keys(byCategory)) {
		name := CategorySeries(c)
		if _, ok := d.Series[name]; !ok && (byCategory[c] <= 0 || cats >= d.MaxCategories) {
			continue
		}
		if _, ok := d.Series[name]; !ok {
			cats++
		}
		judge(name, byCategory[c])
	}
	for _, name := range slices.Sorted(maps.Keys(d.Series)) {
		if c, ok := strings.CutPrefix(name, categoryPrefix); ok {
			if _, seen := byCategory[c]; !seen {
				judge(name, 0)
			}
		}
	}
	return out
}

// Skip records a minute that cannot be judged (no totals exist for it) for every series. The site
// series always exists afterwards: it carries the job's position even before any view was seen.
func (d *Detector) Skip(m time.Time) {
	if d.Series == nil {
		d.Series = map[string]*Series{}
	}
	if d.Series[SiteSeries] == nil {
		d.Series[SiteSeries] = NewSeries(seriesID(SiteSeries), seriesPK, SiteSeries)
	}
	for _, s := range d.Series {
		s.Skip(m)
	}
}

const seriesPK = "anomaly"

func seriesID(name string) string {
	if c, ok := strings.CutPrefix(name, categoryPrefix); ok {
		return "c-" + base64.RawURLEncoding.EncodeToString([]byte(c))
	}
	return name
}

// Minutes is what the job needs of the counts: a minute's totals once it is closed.
type Minutes interface {
	ClosedMinute(ctx context.Context, m time.Time) (trends.MinuteCounts, error)
}

// Publisher publishes CloudEvents; before the last attempt a failure is returned (the invocation fails
// and is retried), on the last attempt the events are parked and nil is returned. publish.Publisher
// implements it.
type Publisher interface {
	Publish(ctx context.Context, evs []event.Event, lastAttempt bool) error
}

// Job is the DetectAnomalies timer's work.
type Job struct {
	Minutes   Minutes
	States    docstore.Collection[Series] // container trendSnapshots, pk "anomaly"
	Publisher Publisher
	Params    Params
	// MaxCategories bounds the category series (default 50); MaxMinutesPerRun the minutes one run
	// judges (default 180); Backfill how far back a first run starts (default and at most 48 hours,
	// the totals' retention minus margin), so the daily shape is learned from the totals that exist
	// and the warm-up is short when trends ran before the detector.
	MaxCategories    int
	MaxMinutesPerRun int
	Backfill         time.Duration
	// PublishHorizon: episodes opened by minutes older than this (a catch-up after an outage) are
	// recorded but not published (default 30 minutes): a stale alert is noise.
	PublishHorizon time.Duration
	Now            func() time.Time
}

// RunStats counts one run.
type RunStats struct {
	Judged, Skipped int
	Through         time.Time
	Findings        int
	Published       int
	Stale           int
	Writes, Reads   int
}

// Run judges every closed minute since the last run, publishes one event per new episode, then saves
// the series states. Publishing comes before saving: when saving fails the next run judges the same
// minutes again and publishes the same ids (consumers de-duplicate by id); when publishing fails
// nothing is saved. A store error or an undelivered publication (before the last attempt) is returned
// so the invocation fails and is retried; the next run catches up in any case.
func (j *Job) Run(ctx context.Context, lastAttempt bool) (RunStats, error) {
	var st RunStats
	now := time.Now().UTC()
	if j.Now != nil {
		now = j.Now().UTC()
	}
	p := j.Params
	if p.SpikeZ == 0 {
		p = DefaultParams()
	}
	d := &Detector{Params: p, MaxCategories: j.MaxCategories, Series: map[string]*Series{}}
	if d.MaxCategories <= 0 {
		d.MaxCategories = 50
	}
	etags := map[string]docstore.ETag{}
	err := j.States.List(ctx, seriesPK, func(id string, s Series, etag docstore.ETag) error {
		d.Series[s.Name] = &s
		etags[s.Name] = etag
		st.Reads++
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("anomaly.Run: %w", err)
	}
	backfill := j.Backfill
	if backfill <= 0 {
		backfill = 48 * time.Hour
	}
	backfill = min(backfill, trends.DefaultTotalsTTL-2*time.Hour)
	earliest := trends.Minute(now).Add(-backfill)
	var cursor time.Time // the first minute to judge
	for _, s := range d.Series {
		if next := s.LastJudged.Add(time.Minute); cursor.IsZero() || next.Before(cursor) {
			cursor = next
		}
	}
	if cursor.IsZero() || cursor.Before(earliest) {
		cursor = earliest
	}
	maxMinutes := j.MaxMinutesPerRun
	if maxMinutes <= 0 {
		maxMinutes = 180
	}
	horizon := j.PublishHorizon
	if horizon <= 0 {
		horizon = 30 * time.Minute
	}
	before := make(map[string]time.Time, len(d.Series))
	for name, s := range d.Series {
		before[name] = s.LastJudged
	}
	var findings []Finding
	for m := cursor; st.Judged+st.Skipped < maxMinutes && !m.After(now); m = m.Add(time.Minute) {
		mc, err := j.Minutes.ClosedMinute(ctx, m)
		st.Reads++
		if err != nil {
			return st, fmt.Errorf("anomaly.Run(%s): %w", m.Format(time.RFC3339), err)
		}
		if !mc.Closed {
			break
		}
		st.Through = m
		if mc.Missing {
			d.Skip(m)
			st.Skipped++
			continue
		}
		byCat := make(map[string]float64, len(mc.Categories))
		for c, n := range mc.Categories {
			byCat[c] = float64(n)
		}
		for _, f := range d.Observe(m, float64(mc.Views), byCat) {
			st.Findings++
			if now.Sub(f.Judgement.Minute) > horizon {
				st.Stale++
				continue
			}
			findings = append(findings, f)
		}
		st.Judged++
	}
	if len(findings) > 0 {
		evs := make([]event.Event, 0, len(findings))
		for _, f := range findings {
			e, err := f.Event()
			if err != nil {
				return st, err
			}
			evs = append(evs, e)
		}
		if j.Publisher == nil {
			return st, errors.New("anomaly.Run: no publisher configured")
		}
		if err := j.Publisher.Publish(ctx, evs, lastAttempt); err != nil {
			return st, fmt.Errorf("anomaly.Run: publish %d event(s): %w", len(evs), err)
		}
		st.Published = len(evs)
	}
	for _, name := range slices.Sorted(maps.Keys(d.Series)) {
		s := d.Series[name]
		if prev, ok := before[name]; ok && prev.Equal(s.LastJudged) {
			continue
		}
		opts := docstore.PutOptions{IfMatch: etags[name]}
		if etags[name] == "" {
			opts = docstore.PutOptions{IfNoneMatch: true}
		}
		if _, err := j.States.Put(ctx, seriesPK, s.ID, *s, opts); err != nil {
			return st, fmt.Errorf("anomaly.Run: save %s: %w", name, err)
		}
		st.Writes++
	}
	return st, nil
}
