package synth_test

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/contoso/eventpipeline/pkg/anomaly"
	"github.com/contoso/eventpipeline/pkg/anomaly/synth"
)

var (
	seedsFlag = flag.String("synth.seeds", "1,2,3,4,5", "workload seeds to score (the documented figures use 1..5)")
	verbose   = flag.Bool("synth.verbose", false, "list every miss and false positive")
	strength  = flag.Float64("synth.strength", 0, "override Config.Strength (spikes and dips, in noise standard deviations)")
	levelStr  = flag.Float64("synth.levelstrength", 0, "override Config.LevelStrength (level shifts, per minute)")
	noise     = flag.Float64("synth.noise", -1, "override Config.Noise (multiplicative noise)")
)

// TestDetectionQuality is the documented measurement (docs/trends.md): it generates the synthetic
// workload for each seed, runs the detector with DefaultParams over it and scores the episodes.
//
//	go test -count=1 -run TestDetectionQuality -v ./pkg/anomaly/synth/
func TestDetectionQuality(t *testing.T) {
	var total synth.Score
	seeds := *seedsFlag
	if testing.Short() {
		seeds = "1"
	}
	for _, f := range strings.Split(seeds, ",") {
		seed, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			t.Fatalf("-synth.seeds: %v", err)
		}
		cfg := synth.Default(seed)
		if *strength > 0 {
			cfg.Strength = *strength
		}
		if *levelStr > 0 {
			cfg.LevelStrength = *levelStr
		}
		if *noise >= 0 {
			cfg.Noise = *noise
		}
		w := synth.Generate(cfg)
		s := synth.Evaluate(w, synth.Detect(w, anomaly.DefaultParams()))
		t.Logf("seed %d: injected %d found %d echoes %d false %d precision %.3f recall %.3f", seed, s.Injected, s.Found, s.Echoes, s.False, s.Precision, s.Recall)
		if *verbose {
			for _, a := range s.Misses {
				t.Logf("  missed %s %s at %s x%.2f (%d min)", a.Series, a.Kind, a.Start.Format("01-02 15:04"), a.Factor, a.Minutes)
			}
			for _, d := range s.Falses {
				t.Logf("  false %s %s %s at %s z=%.1f", d.Series, d.Kind, d.Direction, d.Start.Format("01-02 15:04"), d.Score)
			}
		}
		total.Add(s)
	}
	var b strings.Builder
	total.Report(&b)
	t.Logf("all seeds:\n%s", b.String())
	if *strength > 0 || *levelStr > 0 || *noise >= 0 {
		return // an exploration of another workload: report only
	}
	if total.Precision < 0.9 || total.Recall < 0.9 {
		t.Errorf("precision %.3f recall %.3f: the goal is at least 0.9 each", total.Precision, total.Recall)
	}
}

// The workload and the detector are deterministic for a seed.
func TestDeterministic(t *testing.T) {
	a := synth.Generate(synth.Default(7))
	b := synth.Generate(synth.Default(7))
	if len(a.Anomalies) == 0 || len(a.Anomalies) != len(b.Anomalies) || a.Site(5000) != b.Site(5000) {
		t.Fatal("workload differs between two runs with the same seed")
	}
	da, db := synth.Detect(a, anomaly.DefaultParams()), synth.Detect(b, anomaly.DefaultParams())
	if len(da) != len(db) {
		t.Fatal("detections differ between two runs")
	}
	for i := range da {
		if da[i] != db[i] {
			t.Fatalf("detection %d differs: %+v vs %+v", i, da[i], db[i])
		}
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(m.Run())
}
