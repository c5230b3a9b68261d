// Package synth generates the documented synthetic traffic workload for measuring anomaly detection
// (docs/trends.md): views per minute per category with a diurnal pattern, day-to-day variation,
// overdispersed noise, and injected spikes, dips and lasting level shifts whose ground truth is known;
// it also runs the detector over it and scores the episodes found (precision, recall, delay). It is
// deterministic for a seed.
package synth

import (
	"math"
	"math/rand/v2"
	"time"
)

// Category is one category and its share of the site's views.
type Category struct {
	Name  string
	Share float64
}

// Config shapes a workload.
type Config struct {
	Seed       uint64
	Start      time.Time // midnight UTC
	Days       int
	Categories []Category
	// Night and Peak are the site's mean views per minute at 04:00 and 16:00; an evening bump adds
	// EveningBump*Peak around 21:00.
	Night, Peak, EveningBump float64
	// Noise is the standard deviation of the multiplicative noise on each minute's rate (on top of
	// Poisson); DayJitter that of each day's overall level.
	Noise, DayJitter float64
	// WarmupDays have no injected anomaly (the detector learns the daily shape).
	WarmupDays int
	// Gap bounds the time between two injected anomalies (uniform in [MinGap, MaxGap]).
	MinGap, MaxGap time.Duration
	// Strength is the smallest deviation of an injected spike or dip, in standard deviations of the
	// minute's noise (Poisson and multiplicative); LevelStrength that of a level shift, per minute.
	Strength, LevelStrength float64
}

// Default is the documented workload: 14 days, 5 categories, 300 views/min at night to 2,000 at the
// afternoon peak, 3% multiplicative noise, 3% day-to-day level jitter, 2 warm-up days, then an
// anomaly every 2 to 6 hours (about 6 a day).
func Default(seed uint64) Config {
	return Config{Seed: seed, Start: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), Days: 14,
		Categories: []Category{{"tools", 0.35}, {"garden", 0.25}, {"kitchen", 0.20}, {"toys", 0.12}, {"books", 0.08}},
		Night:      300, Peak: 2000, EveningBump: 0.15, Noise: 0.03, DayJitter: 0.03, WarmupDays: 2,
		MinGap: 2 * time.Hour, MaxGap: 6 * time.Hour, Strength: 7, LevelStrength: 3}
}

// Series names, as the detector job names them.
const Site = "site"

// CategorySeries is the series name of a category.
func CategorySeries(name string) string { return "category/" + name }

// Kinds of injected anomaly (the detector's kinds).
const (
	Spike      = "spike"
	Dip        = "dip"
	LevelShift = "levelShift"
)

// Anomaly is one injected anomaly: the ground truth.
type Anomaly struct {
	Series  string
	Kind    string
	Start   time.Time
	Minutes int     // spikes and dips; a level shift lasts (it is a lasting change of level)
	Factor  float64 // multiplies the series' rate
}

// End is the first minute after a spike or dip (Start for a level shift).
func (a Anomaly) End() time.Time { return a.Start.Add(time.Duration(a.Minutes) * time.Minute) }

// Workload is a generated workload.
type Workload struct {
	Config    Config
	Minutes   int
	Views     [][]float64 // [category][minute]
	Anomalies []Anomaly
}

// Time is minute i's start.
func (w *Workload) Time(i int) time.Time { return w.Config.Start.Add(time.Duration(i) * time.Minute) }

// Site is the site's views in minute i.
func (w *Workload) Site(i int) float64 {
	var s float64
	for c := range w.Views {
		s += w.Views[c][i]
	}
	return s
}

// shape is the site's mean views per minute at minute of day mod.
func (c Config) shape(mod int) float64 {
	x := (1 - math.Cos(2*math.Pi*float64(mod-240)/1440)) / 2
	base := c.Night + (c.Peak-c.Night)*math.Pow(x, 1.5)
	bump := c.EveningBump * c.Peak * math.Exp(-math.Pow(float64(mod-1260)/90, 2))
	return base + bump
}

// Generate builds the workload for cfg.
func Generate(cfg Config) *Workload {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	n := cfg.Days * 1440
	nc := len(cfg.Categories)
	w := &Workload{Config: cfg, Minutes: n, Views: make([][]float64, nc)}
	// Each day has its own level, reached at noon and interpolated in between: traffic varies from day
	// to day, but not in a step at midnight.
	dayLevel := make([]float64, cfg.Days+1)
	for d := range dayLevel {
		dayLevel[d] = 1 + cfg.DayJitter*rng.NormFloat64()
	}
	levelAt := func(i int) float64 {
		f := (float64(i) - 720) / 1440
		d := int(math.Floor(f))
		w := f - float64(d)
		if d < 0 {
			return dayLevel[0]
		}
		return (1-w)*dayLevel[d] + w*dayLevel[d+1]
	}
	// rate[c][i] before anomalies.
	rate := make([][]float64, nc)
	for c := range rate {
		rate[c] = make([]float64, n)
		for i := range n {
			rate[c][i] = cfg.Categories[c].Share * cfg.shape(i%1440) * levelAt(i)
		}
	}
	// Injections, in time order, separated by MinGap..MaxGap.
	sdOf := func(lambda float64) float64 { return math.Sqrt(lambda + math.Pow(cfg.Noise*lambda, 2)) }
	seriesRate := func(target int, i int) float64 { // target -1 = site
		if target < 0 {
			var s float64
			for c := range rate {
				s += rate[c][i]
			}
			return s
		}
		return rate[target][i]
	}
	apply := func(target, from, to int, factor float64) {
		for c := range rate {
			if target >= 0 && c != target {
				continue
			}
			for i := from; i < to && i < n; i++ {
				rate[c][i] *= factor
			}
		}
	}
	t := cfg.WarmupDays * 1440
	for {
		t += int(cfg.MinGap.Minutes()) + rng.IntN(int((cfg.MaxGap-cfg.MinGap).Minutes())+1)
		if t >= n-120 {
			break
		}
		// Draw until the anomaly can be made strong enough at its time (a dip cannot go below zero).
		for range 20 {
			target := -1
			if rng.Float64() >= 0.4 {
				target = rng.IntN(nc)
			}
			lambda := seriesRate(target, t)
			sd := sdOf(lambda)
			a := Anomaly{Series: Site, Start: w.Time(t)}
			if target >= 0 {
				a.Series = CategorySeries(cfg.Categories[target].Name)
			}
			switch k := rng.Float64(); {
			case k < 0.35:
				a.Kind, a.Minutes = Spike, 1+rng.IntN(3)
				rel := max(0.3+0.7*rng.Float64(), cfg.Strength*sd/lambda)
				a.Factor = 1 + rel
			case k < 0.65:
				a.Kind, a.Minutes = Dip, 1+rng.IntN(3)
				rel := max(0.3+0.5*rng.Float64(), cfg.Strength*sd/lambda)
				if rel > 0.95 {
					continue
				}
				a.Factor = 1 - rel
			default:
				a.Kind = LevelShift
				rel := max(0.2+0.3*rng.Float64(), cfg.LevelStrength*sd/lambda)
				if rel > 0.6 {
					continue
				}
				if rng.IntN(2) == 0 {
					a.Factor = 1 + rel
				} else {
					a.Factor = 1 / (1 + rel)
				}
			}
			to := t + a.Minutes
			if a.Kind == LevelShift {
				to = n
			}
			apply(target, t, to, a.Factor)
			w.Anomalies = append(w.Anomalies, a)
			break
		}
	}
	for c := range rate {
		w.Views[c] = make([]float64, n)
		for i := range n {
			lambda := rate[c][i] * max(0, 1+cfg.Noise*rng.NormFloat64())
			w.Views[c][i] = poisson(rng, lambda)
		}
	}
	return w
}

// poisson draws a Poisson count (Knuth below 30, a rounded normal above).
func poisson(rng *rand.Rand, lambda float64) float64 {
	if lambda <= 0 {
		return 0
	}
	if lambda >= 30 {
		return math.Max(0, math.Round(lambda+math.Sqrt(lambda)*rng.NormFloat64()))
	}
	l := math.Exp(-lambda)
	k, p := 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return float64(k)
		}
		k++
	}
}
