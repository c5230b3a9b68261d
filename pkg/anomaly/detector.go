// Package anomaly owns traffic anomaly detection: per series of views per minute (site-wide and per
// category), a robust baseline learned from recent history, a spike-and-dip detector for short
// deviations, a change-point detector for lasting level shifts, and anomaly episodes, each published
// once as a CloudEvent (com.contoso.analytics.anomaly.detected) with a deterministic id.
//
// The model of one minute m with observed views x:
//
//	S(m)  seasonal shape: the trimmed mean over the previous days (up to HistoryDays) of that day's mean
//	      views per minute at m's time of day (10-minute slots, linearly interpolated). Until
//	      MinHistoryDays days exist, S = 1 (a flat shape) and the stricter WarmupSpikeZ applies.
//	r     level: the median of x/S over the last LevelWindow minutes, but none before the last
//	      change point, so a level shift is followed at once.
//	E     expected = r * S(m)
//	q     (x - E) / sqrt(E): the residual in Poisson standard deviations
//	z     q / sigma, where sigma = max(1, 1.4826 * MAD of q over the last ScaleWindow normal
//	      minutes): real traffic is noisier than Poisson, and MAD ignores the anomalies themselves
//
// Detectors (the anchors are Azure Stream Analytics' AnomalyDetection_SpikeAndDip and
// AnomalyDetection_ChangePoint):
//
//	spike / dip   |z| >= SpikeZ (only when E >= MinExpected: sparse series are not judged)
//	change point  RunLength consecutive spikes (or dips), the onset being the first of them; or a
//	              two-sided CUSUM on z of the normal minutes (S+ = max(0, S+ + z - CusumK), alarm at
//	              CusumH), the onset being where the sum left zero. A change point resets the level.
//
// An episode opens at the first anomalous minute of a series and closes after QuietMinutes normal
// minutes; one event is published per episode, when it opens. Its kind is the detector that opened
// it: "spike" or "dip" (a large level shift usually opens as one, the change point following a few
// minutes later within the same episode), or "levelShift" (a shift too small for a spike).
package anomaly

import (
	"math"
	"slices"
	"time"
)

// Kinds and directions of an anomaly.
const (
	KindSpike      = "spike"
	KindDip        = "dip"
	KindLevelShift = "levelShift"
	DirectionUp    = "up"
	DirectionDown  = "down"
)

// Params tune the detectors. DefaultParams are the values measured in docs/trends.md.
type Params struct {
	SpikeZ         float64
	WarmupSpikeZ   float64
	MinExpected    float64
	CusumK, CusumH float64
	RunLength      int
	QuietMinutes   int
	LevelWindow    int // minutes
	ScaleWindow    int // minutes
	HistoryDays    int
	MinHistoryDays int
	// MinPoints is how many recent minutes a series needs before it is judged at all.
	MinPoints int
}

// DefaultParams returns the tuned defaults.
func DefaultParams() Params {
	return Params{SpikeZ: 5, WarmupSpikeZ: 8, MinExpected: 10, CusumK: 1, CusumH: 8, RunLength: 4,
		QuietMinutes: 5, LevelWindow: 60, ScaleWindow: 60, HistoryDays: 7, MinHistoryDays: 2, MinPoints: 10}
}

const slotsPerDay = 144 // 10-minute slots

// Day is one day's shape: per 10-minute slot, the sum of views and the number of minutes judged.
type Day struct {
	Date int       `json:"date"` // YYYYMMDD (UTC)
	Sum  []float64 `json:"sum"`
	N    []int     `json:"n"`
}

func (d *Day) mean(slot int) (float64, bool) {
	if slot >= len(d.N) || d.N[slot] == 0 {
		return 0, false
	}
	return d.Sum[slot] / float64(d.N[slot]), true
}

// at is the day's interpolated views per minute at minute of day mod.
func (d *Day) at(mod int) (float64, bool) {
	f := (float64(mod)+0.5)/10 - 0.5
	s0 := math.Floor(f)
	w := f - s0
	i0 := (int(s0) + slotsPerDay) % slotsPerDay
	i1 := (i0 + 1) % slotsPerDay
	v0, ok0 := d.mean(i0)
	v1, ok1 := d.mean(i1)
	switch {
	case ok0 && ok1:
		return (1-w)*v0 + w*v1, true
	case ok0:
		return v0, true
	case ok1:
		return v1, true
	}
	return 0, false
}

// Point is one judged minute.
type Point struct {
	Minute time.Time `json:"m"`
	X      float64   `json:"x"`
	Q      float64   `json:"q"`
	// Flag is +1 for a spike, -1 for a dip, 0 otherwise; Judged is false in warm-up (no q).
	Flag   int  `json:"f,omitempty"`
	Judged bool `json:"j,omitempty"`
}

// Episode is an open anomaly episode.
type Episode struct {
	ID        string    `json:"id"`
	Start     time.Time `json:"start"`
	Last      time.Time `json:"last"`
	Direction string    `json:"direction"`
	Kind      string    `json:"kind"`
}

// Series is the detector state of one series, stored as one document (container trendSnapshots,
// pk "anomaly", id "site" or "c-<category, base64url>").
type Series struct {
	ID   string `json:"id"`
	PK   string `json:"pk"`
	Name string `json:"name"` // "site" or "category/<name>"
	// LastJudged is the last minute applied to this state (judged, or skipped as missing).
	LastJudged time.Time `json:"lastJudged"`
	Days       []Day     `json:"days,omitempty"`
	Recent     []Point   `json:"recent,omitempty"`
	LevelFrom  time.Time `json:"levelFrom"`
	CusumUp    float64   `json:"cusumUp"`
	CusumDown  float64   `json:"cusumDown"`
	UpSince    time.Time `json:"upSince"`
	DownSince  time.Time `json:"downSince"`
	Run        int       `json:"run"`
	RunDir     int       `json:"runDir"`
	Episode    *Episode  `json:"episode,omitempty"`

	// A cache of S for recent minutes (not stored): S of a past minute changes only when a day
	// rolls over or a change point rescales the shape, which bump gen.
	gen      int
	cacheKey int
	cache    map[time.Time]float64
}

// dateOf is t's UTC date as YYYYMMDD.
func dateOf(t time.Time) int {
	y, m, d := t.UTC().Date()
	return y*10000 + int(m)*100 + d
}

// seasonalCached is seasonal for a recent minute, cached until the shape changes.
func (s *Series) seasonalCached(t time.Time, p Params, ok bool) float64 {
	key := s.gen * 2
	if ok {
		key++
	}
	if s.cache == nil || s.cacheKey != key {
		s.cache, s.cacheKey = make(map[time.Time]float64, 128), key
	}
	if v, hit := s.cache[t]; hit {
		return v
	}
	v := s.seasonal(t, p, ok)
	s.cache[t] = v
	return v
}

// Judgement is the outcome of one minute.
type Judgement struct {
	Minute    time.Time
	Observed  float64
	Expected  float64
	Score     float64 // z
	Warmup    bool    // not enough history: not judged
	Spike     bool
	Dip       bool
	Change    bool // a change point was detected at this minute
	Anomalous bool
	// Opened is the episode this minute opened (publish it), nil otherwise.
	Opened *Episode
}

// NewSeries returns an empty series state.
func NewSeries(id, pk, name string) *Series { return &Series{ID: id, PK: pk, Name: name} }

// Judge applies minute m with x views to the series and returns the judgement. Minutes must come in
// order; a minute at or before LastJudged changes nothing (a replay).
func (s *Series) Judge(m time.Time, x float64, p Params, episodeID func(start time.Time) string) Judgement {
	m = m.UTC()
	j := Judgement{Minute: m, Observed: x}
	if !s.LastJudged.IsZero() && !m.After(s.LastJudged) {
		j.Warmup = true
		return j
	}
	seasonalOK := s.hasSeason(m, p)
	S := s.seasonal(m, p, seasonalOK)
	level, n := s.level(m, p, seasonalOK)
	pt := Point{Minute: m, X: x}
	if n < p.MinPoints || level <= 0 {
		j.Warmup = true
		s.record(m, x, pt, p)
		s.closeEpisode(m, false, p)
		return j
	}
	E := level * S
	j.Expected = round(E, 3)
	q := (x - E) / math.Sqrt(max(E, 1))
	z := q / s.scale(m, p)
	j.Score = round(z, 3)
	pt.Q, pt.Judged = q, true
	thr := p.SpikeZ
	if !seasonalOK {
		thr = p.WarmupSpikeZ
	}
	if E >= p.MinExpected {
		j.Spike = z >= thr
		j.Dip = z <= -thr
	}
	dir := 0
	switch {
	case j.Spike:
		dir, pt.Flag = 1, 1
	case j.Dip:
		dir, pt.Flag = -1, -1
	}
	// Change points: a run of spikes (or dips), or the CUSUM of the normal minutes.
	var onset time.Time
	changeDir := 0
	if !seasonalOK {
		// In warm-up the flat baseline lags the daily ramps: only clear spikes and dips are judged.
	} else if dir != 0 {
		if s.RunDir == dir {
			s.Run++
		} else {
			s.Run, s.RunDir = 1, dir
		}
		if s.Run >= p.RunLength {
			onset, changeDir = m.Add(-time.Duration(s.Run-1)*time.Minute), dir
		}
	} else {
		s.Run, s.RunDir = 0, 0
		if E >= p.MinExpected {
			s.CusumUp = max(0, s.CusumUp+z-p.CusumK)
			s.CusumDown = max(0, s.CusumDown-z-p.CusumK)
			s.UpSince = since(s.UpSince, s.CusumUp, m)
			s.DownSince = since(s.DownSince, s.CusumDown, m)
			switch {
			case s.CusumUp >= p.CusumH:
				onset, changeDir = s.UpSince, 1
			case s.CusumDown >= p.CusumH:
				onset, changeDir = s.DownSince, -1
			}
		}
	}
	if changeDir != 0 {
		j.Change = true
		s.rescale(m, x, onset, p)
		s.LevelFrom = onset
		s.CusumUp, s.CusumDown, s.UpSince, s.DownSince = 0, 0, time.Time{}, time.Time{}
		s.Run, s.RunDir = 0, 0
		if dir == 0 {
			dir = changeDir
		}
	}
	j.Anomalous = j.Spike || j.Dip || j.Change
	learn := x
	if pt.Flag != 0 {
		learn = E // a spike must not teach the seasonal shape
	}
	s.record(m, learn, pt, p)
	if j.Anomalous && s.Episode == nil {
		kind := KindLevelShift
		switch {
		case j.Spike:
			kind = KindSpike
		case j.Dip:
			kind = KindDip
		}
		direction := DirectionUp
		if dir < 0 {
			direction = DirectionDown
		}
		s.Episode = &Episode{ID: episodeID(m), Start: m, Last: m, Direction: direction, Kind: kind}
		ep := *s.Episode
		j.Opened = &ep
	}
	s.closeEpisode(m, j.Anomalous, p)
	return j
}

// Skip records minute m as not judgeable (no totals exist for it).
func (s *Series) Skip(m time.Time) {
	if m.After(s.LastJudged) {
		s.LastJudged = m.UTC()
	}
}

func since(cur time.Time, sum float64, m time.Time) time.Time {
	switch {
	case sum == 0:
		return time.Time{}
	case cur.IsZero():
		return m
	}
	return cur
}

func (s *Series) closeEpisode(m time.Time, anomalous bool, p Params) {
	if s.Episode == nil {
		return
	}
	if anomalous {
		s.Episode.Last = m
		return
	}
	if m.Sub(s.Episode.Last) >= time.Duration(p.QuietMinutes)*time.Minute {
		s.Episode = nil
	}
}

// record adds the minute to the recent points and the day's shape.
func (s *Series) record(m time.Time, learn float64, pt Point, p Params) {
	s.LastJudged = m
	s.Recent = append(s.Recent, pt)
	keep := max(p.LevelWindow, p.ScaleWindow) + 30
	if len(s.Recent) > keep {
		s.Recent = slices.Clone(s.Recent[len(s.Recent)-keep:])
	}
	date := dateOf(m)
	if len(s.Days) == 0 || s.Days[len(s.Days)-1].Date != date {
		s.gen++
		s.Days = append(s.Days, Day{Date: date, Sum: make([]float64, slotsPerDay), N: make([]int, slotsPerDay)})
		if len(s.Days) > p.HistoryDays+1 {
			s.Days = slices.Clone(s.Days[len(s.Days)-p.HistoryDays-1:])
		}
	}
	d := &s.Days[len(s.Days)-1]
	slot := (m.Hour()*60 + m.Minute()) / 10
	d.Sum[slot] = round(d.Sum[slot]+learn, 3)
	d.N[slot]++
}

// rescale brings the stored shape to the level after a change point at onset: every past day, and
// today before the onset's slot, is multiplied by the ratio of the level since the onset to the level
// before it. Without it a lasting shift would print a step into the median shape at its time of day
// for the next HistoryDays days, and each of those days would see a false change there.
func (s *Series) rescale(m time.Time, x float64, onset time.Time, p Params) {
	var before, after []float64
	from := onset.Add(-time.Duration(p.LevelWindow) * time.Minute)
	if s.LevelFrom.After(from) {
		from = s.LevelFrom
	}
	for _, pt := range s.Recent {
		if pt.Minute.Before(from) {
			continue
		}
		r := pt.X / s.seasonalCached(pt.Minute, p, true)
		if pt.Minute.Before(onset) {
			before = append(before, r)
		} else {
			after = append(after, r)
		}
	}
	after = append(after, x/s.seasonal(m, p, true))
	if len(before) < p.MinPoints/2 {
		return
	}
	rb, ra := median(before), median(after)
	if rb <= 0 || ra <= 0 {
		return
	}
	f := ra / rb
	if f < 0.1 || f > 10 {
		return
	}
	today := dateOf(m)
	onsetSlot := (onset.Hour()*60 + onset.Minute()) / 10
	s.gen++
	for i := range s.Days {
		d := &s.Days[i]
		for slot := range d.Sum {
			if d.Date == today && (dateOf(onset) != today || slot >= onsetSlot) {
				continue
			}
			d.Sum[slot] = round(d.Sum[slot]*f, 3)
		}
	}
}

// hasSeason reports whether MinHistoryDays previous days hold a shape at m's time of day.
func (s *Series) hasSeason(m time.Time, p Params) bool {
	n := 0
	date := dateOf(m)
	mod := m.Hour()*60 + m.Minute()
	for i := range s.Days {
		if s.Days[i].Date >= date {
			continue
		}
		if _, ok := s.Days[i].at(mod); ok {
			n++
		}
	}
	return n >= p.MinHistoryDays
}

// seasonal is S(m): the median shape of the previous days, or 1 without enough history.
func (s *Series) seasonal(m time.Time, p Params, ok bool) float64 {
	if !ok {
		return 1
	}
	date := dateOf(m)
	mod := m.Hour()*60 + m.Minute()
	vals := make([]float64, 0, len(s.Days))
	for i := range s.Days {
		if s.Days[i].Date >= date {
			continue
		}
		if v, ok := s.Days[i].at(mod); ok {
			vals = append(vals, v)
		}
	}
	return max(trimmedMean(vals), 0.5)
}

// trimmedMean drops the highest and the lowest value (when there are at least 4) and averages the
// rest. Robust to one anomalous day, and unlike a median it spreads a lasting level change over the
// following days instead of switching to it in one step at its time of day.
func trimmedMean(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	slices.Sort(vals)
	if len(vals) >= 4 {
		vals = vals[1 : len(vals)-1]
	}
	var sum float64
	for _, v := range vals {
		sum += v
	}
	return sum / float64(len(vals))
}

// level is r: the median ratio of recent views to their seasonal shape, since the last change point.
func (s *Series) level(m time.Time, p Params, seasonalOK bool) (float64, int) {
	from := m.Add(-time.Duration(p.LevelWindow) * time.Minute)
	if s.LevelFrom.After(from) {
		from = s.LevelFrom
	}
	ratios := make([]float64, 0, p.LevelWindow)
	for i := len(s.Recent) - 1; i >= 0; i-- {
		pt := s.Recent[i]
		if pt.Minute.Before(from) {
			break
		}
		ratios = append(ratios, pt.X/s.seasonalCached(pt.Minute, p, seasonalOK))
	}
	// Right after a change point only a few minutes exist at the new level; fewer than MinPoints is
	// still better than the old level, but at least one is needed.
	if len(ratios) == 0 {
		return 0, 0
	}
	n := len(s.Recent)
	return median(ratios), n
}

// scale is sigma: the robust spread of recent normal residuals, at least 1 (Poisson).
func (s *Series) scale(m time.Time, p Params) float64 {
	from := m.Add(-time.Duration(p.ScaleWindow) * time.Minute)
	qs := make([]float64, 0, p.ScaleWindow)
	for i := len(s.Recent) - 1; i >= 0; i-- {
		pt := s.Recent[i]
		if pt.Minute.Before(from) {
			break
		}
		if pt.Judged && pt.Flag == 0 {
			qs = append(qs, pt.Q)
		}
	}
	if len(qs) < 10 {
		return 1
	}
	med := median(qs)
	dev := make([]float64, len(qs))
	for i, q := range qs {
		dev[i] = math.Abs(q - med)
	}
	return max(1, 1.4826*median(dev))
}

// median of vals (which it reorders); 0 for none.
func median(vals []float64) float64 {
	n := len(vals)
	if n == 0 {
		return 0
	}
	slices.Sort(vals)
	if n%2 == 1 {
		return vals[n/2]
	}
	return (vals[n/2-1] + vals[n/2]) / 2
}

func round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}
