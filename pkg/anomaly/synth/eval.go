package synth

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/contoso/eventpipeline/pkg/anomaly"
)

// Detection is an episode the detector opened.
type Detection struct {
	Series    string
	Start     time.Time
	Kind      string
	Direction string
	Score     float64
}

// Detect runs the detector over w minute by minute, exactly as the DetectAnomalies job feeds it
// (anomaly.Detector.Observe with the site total and the per-category counts of each closed minute),
// and returns the episodes it opened.
func Detect(w *Workload, p anomaly.Params) []Detection {
	d := &anomaly.Detector{Params: p, MaxCategories: 50}
	var out []Detection
	byCat := make(map[string]float64, len(w.Config.Categories))
	for i := range w.Minutes {
		var total float64
		for c, cat := range w.Config.Categories {
			byCat[cat.Name] = w.Views[c][i]
			total += w.Views[c][i]
		}
		for _, f := range d.Observe(w.Time(i), total, byCat) {
			j := f.Judgement
			out = append(out, Detection{Series: f.Series, Start: j.Minute, Kind: j.Opened.Kind, Direction: j.Opened.Direction, Score: j.Score})
		}
	}
	return out
}

// Match rules: a detection matches an injected anomaly when it opens on a series the anomaly affects,
// within its window: from its start to 2 minutes after its end for a spike or a dip, to 30 minutes
// after its start for a level shift.
const (
	SpikeSlack = 2 * time.Minute
	LevelSlack = 30 * time.Minute
)

func window(a Anomaly) (time.Time, time.Time) {
	if a.Kind == LevelShift {
		return a.Start, a.Start.Add(LevelSlack)
	}
	return a.Start, a.End().Add(SpikeSlack)
}

// Score is the quality of a run.
type Score struct {
	Injected int // anomalies injected
	Detected int // episodes opened after the warm-up
	// Found: injected anomalies detected on their own series (recall's numerator). Echoes: episodes
	// on another series the anomaly also moved (a category spike seen in the site total, a site-wide
	// dip seen in a category): true detections, not counted for recall. False: episodes matching
	// nothing (precision's cost). WarmupDetections: episodes during the warm-up, reported apart.
	Found, Echoes, False, WarmupDetections int
	Precision, Recall                      float64
	// Delays in minutes (detection minute - injected start) of the found anomalies, and per kind.
	Delays      []int
	ByKind      map[string]*KindScore
	FalseByKind map[string]int
	Misses      []Anomaly
	Falses      []Detection
}

// KindScore is recall and delay per kind of injected anomaly.
type KindScore struct {
	Injected, Found int
	Delays          []int
	// OpenedAs counts the kind the detector gave the episode.
	OpenedAs map[string]int
}

// Evaluate scores detections against w's ground truth. Each injected anomaly is matched by at most
// one detection on its own series and one on each other series it moved; any other detection after
// the warm-up is a false positive.
func Evaluate(w *Workload, dets []Detection) *Score {
	s := &Score{Injected: len(w.Anomalies), ByKind: map[string]*KindScore{}, FalseByKind: map[string]int{}}
	warmEnd := w.Config.Start.Add(time.Duration(w.Config.WarmupDays) * 24 * time.Hour)
	found := make([]bool, len(w.Anomalies))
	echoed := make([]map[string]bool, len(w.Anomalies))
	for i := range echoed {
		echoed[i] = map[string]bool{}
	}
	for _, a := range w.Anomalies {
		ks := s.ByKind[a.Kind]
		if ks == nil {
			ks = &KindScore{OpenedAs: map[string]int{}}
			s.ByKind[a.Kind] = ks
		}
		ks.Injected++
	}
	sorted := slices.Clone(dets)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Start.Before(sorted[j].Start) })
	for _, d := range sorted {
		if d.Start.Before(warmEnd) {
			s.WarmupDetections++
			continue
		}
		s.Detected++
		matched := false
		for i, a := range w.Anomalies {
			from, to := window(a)
			if d.Start.Before(from) || d.Start.After(to) {
				continue
			}
			if d.Series == a.Series && !found[i] {
				found[i] = true
				s.Found++
				delay := int(d.Start.Sub(a.Start) / time.Minute)
				s.Delays = append(s.Delays, delay)
				ks := s.ByKind[a.Kind]
				ks.Found++
				ks.Delays = append(ks.Delays, delay)
				ks.OpenedAs[d.Kind]++
				matched = true
				break
			}
			if d.Series != a.Series && affects(a, d.Series) && !echoed[i][d.Series] {
				echoed[i][d.Series] = true
				s.Echoes++
				matched = true
				break
			}
		}
		if !matched {
			s.False++
			s.FalseByKind[d.Kind]++
			s.Falses = append(s.Falses, d)
		}
	}
	for i, a := range w.Anomalies {
		if !found[i] {
			s.Misses = append(s.Misses, a)
		}
	}
	if s.Detected > 0 {
		s.Precision = float64(s.Found+s.Echoes) / float64(s.Detected)
	}
	if s.Injected > 0 {
		s.Recall = float64(s.Found) / float64(s.Injected)
	}
	return s
}

// affects reports whether an anomaly injected on a.Series moves series too: a site-wide anomaly
// moves every category, a category's moves the site total.
func affects(a Anomaly, series string) bool {
	return a.Series == Site || series == Site
}

// Add merges another run's score into s.
func (s *Score) Add(o *Score) {
	s.Injected += o.Injected
	s.Detected += o.Detected
	s.Found += o.Found
	s.Echoes += o.Echoes
	s.False += o.False
	s.WarmupDetections += o.WarmupDetections
	s.Delays = append(s.Delays, o.Delays...)
	s.Misses = append(s.Misses, o.Misses...)
	s.Falses = append(s.Falses, o.Falses...)
	if s.ByKind == nil {
		s.ByKind = map[string]*KindScore{}
		s.FalseByKind = map[string]int{}
	}
	for k, ks := range o.ByKind {
		mine := s.ByKind[k]
		if mine == nil {
			mine = &KindScore{OpenedAs: map[string]int{}}
			s.ByKind[k] = mine
		}
		mine.Injected += ks.Injected
		mine.Found += ks.Found
		mine.Delays = append(mine.Delays, ks.Delays...)
		for kk, n := range ks.OpenedAs {
			mine.OpenedAs[kk] += n
		}
	}
	for k, n := range o.FalseByKind {
		s.FalseByKind[k] += n
	}
	if s.Detected > 0 {
		s.Precision = float64(s.Found+s.Echoes) / float64(s.Detected)
	}
	if s.Injected > 0 {
		s.Recall = float64(s.Found) / float64(s.Injected)
	}
}

// Percentile of delays (nearest rank); -1 for none.
func Percentile(delays []int, p float64) int {
	if len(delays) == 0 {
		return -1
	}
	d := slices.Clone(delays)
	slices.Sort(d)
	i := int(math.Ceil(p/100*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

func mean(delays []int) float64 {
	if len(delays) == 0 {
		return 0
	}
	var s int
	for _, d := range delays {
		s += d
	}
	return float64(s) / float64(len(delays))
}

// Report writes the score as the table docs/trends.md shows.
func (s *Score) Report(out io.Writer) {
	fmt.Fprintf(out, "injected %d, episodes after warm-up %d (found %d, echoes %d, false %d), warm-up episodes %d\n",
		s.Injected, s.Detected, s.Found, s.Echoes, s.False, s.WarmupDetections)
	fmt.Fprintf(out, "precision %.3f  recall %.3f  delay (data minutes) mean %.2f p50 %d p90 %d max %d\n",
		s.Precision, s.Recall, mean(s.Delays), Percentile(s.Delays, 50), Percentile(s.Delays, 90), Percentile(s.Delays, 100))
	fmt.Fprintf(out, "precision without echoes (found / (found + false)) %.3f\n", float64(s.Found)/float64(max(1, s.Found+s.False)))
	for _, k := range []string{Spike, Dip, LevelShift} {
		ks := s.ByKind[k]
		if ks == nil {
			continue
		}
		fmt.Fprintf(out, "  %-10s injected %3d found %3d recall %.3f delay mean %.2f p90 %d max %d opened as %v\n", k, ks.Injected, ks.Found,
			float64(ks.Found)/float64(max(1, ks.Injected)), mean(ks.Delays), Percentile(ks.Delays, 90), Percentile(ks.Delays, 100), ks.OpenedAs)
	}
	if len(s.FalseByKind) > 0 {
		fmt.Fprintf(out, "  false positives by opened kind %v\n", s.FalseByKind)
	}
}
