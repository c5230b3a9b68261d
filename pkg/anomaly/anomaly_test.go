package anomaly_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/anomaly"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/trends"
)

var start = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// traffic is a simple diurnal series with Poisson-like noise: 3 days of history, then day 4 is
// returned by the caller's edits.
func traffic(seed uint64, days int) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, days*1440)
	for i := range out {
		mod := i % 1440
		lambda := 400 + 600*(1-math.Cos(2*math.Pi*float64(mod-240)/1440))/2
		out[i] = math.Round(lambda + math.Sqrt(lambda)*rng.NormFloat64())
	}
	return out
}

func at(i int) time.Time { return start.Add(time.Duration(i) * time.Minute) }

// run feeds xs into one series and returns the episodes opened at or after minute from.
func run(xs []float64, from int) []anomaly.Judgement {
	d := &anomaly.Detector{Params: anomaly.DefaultParams(), MaxCategories: 10}
	var out []anomaly.Judgement
	for i, x := range xs {
		for _, f := range d.Observe(at(i), x, nil) {
			if i >= from {
				out = append(out, f.Judgement)
			}
		}
	}
	return out
}

// One episode per anomaly: a 3-minute spike opens one episode (one event), a lasting level shift
// opens one, and a second spike after the quiet period opens a new one.
func TestEpisodes(t *testing.T) {
	xs := traffic(1, 4)
	day4 := 3 * 1440
	spike := day4 + 600
	for i := spike; i < spike+3; i++ {
		xs[i] *= 2
	}
	spike2 := spike + 3 + 20
	xs[spike2] *= 2
	shift := day4 + 900
	for i := shift; i < len(xs); i++ {
		xs[i] *= 1.5
	}
	got := run(xs, day4)
	var starts []time.Time
	var kinds []string
	for _, j := range got {
		starts = append(starts, j.Minute)
		kinds = append(kinds, j.Opened.Kind)
	}
	want := []time.Time{at(spike), at(spike2), at(shift)}
	if diff := cmp.Diff(want, starts); diff != "" {
		t.Fatalf("episodes (-want +got):\n%s\nkinds %v", diff, kinds)
	}
	if got[0].Opened.Kind != anomaly.KindSpike || got[0].Opened.Direction != anomaly.DirectionUp {
		t.Errorf("first episode %+v, want an upward spike", got[0].Opened)
	}
	if got[0].Expected <= 0 || got[0].Observed < 1.5*got[0].Expected || got[0].Score < 5 {
		t.Errorf("first judgement %+v: observed should be about twice the expected, score >= 5", got[0])
	}
}

func TestSmallLevelShiftIsAChangePoint(t *testing.T) {
	xs := traffic(2, 4)
	shift := 3*1440 + 780 // 13:00, near the peak
	for i := shift; i < len(xs); i++ {
		xs[i] *= 0.88 // about -3.5 Poisson standard deviations a minute: no single minute is a dip
	}
	got := run(xs, 3*1440)
	if len(got) != 1 {
		t.Fatalf("%d episodes, want 1: %+v", len(got), got)
	}
	j := got[0]
	if j.Opened.Kind != anomaly.KindLevelShift || j.Opened.Direction != anomaly.DirectionDown {
		t.Errorf("episode %+v, want a downward level shift", j.Opened)
	}
	if d := j.Minute.Sub(at(shift)); d < 0 || d > 15*time.Minute {
		t.Errorf("detected %v after the shift", d)
	}
}

// The state survives a store round trip exactly: judging after a save and load gives the same
// answers as judging on (what a re-run after a crash relies on).
func TestStateRoundTrip(t *testing.T) {
	xs := traffic(3, 4)
	for i := len(xs) - 150; i < len(xs)-148; i++ {
		xs[i] *= 3
	}
	p := anomaly.DefaultParams()
	a := anomaly.NewSeries("site", "anomaly", "site")
	b := anomaly.NewSeries("site", "anomaly", "site")
	id := func(t time.Time) string { return anomaly.EpisodeID("site", t) }
	opened := 0
	for i, x := range xs {
		ja := a.Judge(at(i), x, p, id)
		if ja.Opened != nil {
			opened++
		}
		if i%17 != 0 && i < len(xs)-200 {
			// Round-trip a sample of the minutes (every one is slow under -race), and every one of
			// the last 200, which hold the anomaly.
			jb := b.Judge(at(i), x, p, id)
			if diff := cmp.Diff(ja, jb); diff != "" {
				t.Fatalf("minute %d differs (-a +b):\n%s", i, diff)
			}
			continue
		}
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var loaded anomaly.Series
		if err := json.Unmarshal(raw, &loaded); err != nil {
			t.Fatal(err)
		}
		jb := loaded.Judge(at(i), x, p, id)
		b = &loaded
		if diff := cmp.Diff(ja, jb); diff != "" {
			t.Fatalf("minute %d differs after a round trip (-direct +reloaded):\n%s", i, diff)
		}
	}
	if opened == 0 {
		t.Fatal("the injected spike opened no episode: the round trip was not exercised on an anomaly")
	}
	// Judging a minute again (a replay) changes nothing.
	before, _ := json.Marshal(a)
	j := a.Judge(at(len(xs)-1), 1e6, p, id)
	after, _ := json.Marshal(a)
	if j.Anomalous || string(before) != string(after) {
		t.Error("re-judging a judged minute changed the state")
	}
}

func TestIDsAndSubjects(t *testing.T) {
	m := time.Date(2026, 11, 25, 12, 34, 0, 0, time.UTC)
	if anomaly.EpisodeID("site", m) != anomaly.EpisodeID("site", m.Add(0)) {
		t.Error("EpisodeID is not deterministic")
	}
	if anomaly.EpisodeID("site", m) == anomaly.EpisodeID("site", m.Add(time.Minute)) ||
		anomaly.EpisodeID("site", m) == anomaly.EpisodeID(anomaly.CategorySeries("site"), m) {
		t.Error("EpisodeID collides")
	}
	for series, want := range map[string]string{
		"site":                                  "/traffic/site",
		anomaly.CategorySeries("garden"):        "/traffic/category/garden",
		anomaly.CategorySeries("home & living"): "/traffic/category/home%20&%20living",
		anomaly.CategorySeries("a/b"):           "/traffic/category/a%2Fb",
	} {
		if got := anomaly.Subject(series); got != want {
			t.Errorf("Subject(%q) = %q, want %q", series, got, want)
		}
	}
}

// fakeMinutes serves minute counts; minutes after closedThrough are not closed yet.
type fakeMinutes struct {
	counts        map[time.Time]trends.MinuteCounts
	closedThrough time.Time
}

func (f *fakeMinutes) ClosedMinute(ctx context.Context, m time.Time) (trends.MinuteCounts, error) {
	if m.After(f.closedThrough) {
		return trends.MinuteCounts{Minute: m}, nil
	}
	c, ok := f.counts[m]
	if !ok {
		return trends.MinuteCounts{Minute: m, Closed: true, Missing: true}, nil
	}
	c.Closed = true
	return c, nil
}

// fakePublisher records what it was given and fails while down (parking on the last attempt, like
// publish.Publisher).
type fakePublisher struct {
	down      bool
	published []event.Event
	parked    []event.Event
}

func (f *fakePublisher) Publish(ctx context.Context, evs []event.Event, lastAttempt bool) error {
	if f.down {
		if lastAttempt {
			f.parked = append(f.parked, evs...)
			return nil
		}
		return errors.New("events not delivered: 503")
	}
	f.published = append(f.published, evs...)
	return nil
}

// failingStates makes saving fail while down.
type failingStates struct {
	docstore.Collection[anomaly.Series]
	down bool
}

func (f *failingStates) Put(ctx context.Context, pk, id string, v anomaly.Series, o docstore.PutOptions) (docstore.ETag, error) {
	if f.down {
		return "", errors.New("429 too many requests")
	}
	return f.Collection.Put(ctx, pk, id, v, o)
}

// The job judges closed minutes only, publishes one event per episode, and a re-run after a failed
// save or a failed publication publishes the same event ids.
func TestJobPublishesOncePerEpisodeWithStableIDs(t *testing.T) {
	ctx := context.Background()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	coll, err := embedded.NewCollection[anomaly.Series](db, "trendSnapshots.anomaly")
	if err != nil {
		t.Fatal(err)
	}
	states := &failingStates{Collection: coll}
	xs := traffic(4, 4)
	spike := 3*1440 + 700
	xs[spike] *= 2.5
	mins := &fakeMinutes{counts: map[time.Time]trends.MinuteCounts{}}
	for i, x := range xs {
		mins.counts[at(i)] = trends.MinuteCounts{Minute: at(i), Views: int64(x), Categories: map[string]int64{"tools": int64(x * 0.6), "garden": int64(x) - int64(x*0.6)}}
	}
	pub := &fakePublisher{}
	now := at(spike + 12)
	job := &anomaly.Job{Minutes: mins, States: states, Publisher: pub, Backfill: 48 * time.Hour, MaxMinutesPerRun: 5000,
		Now: func() time.Time { return now }}

	// Minutes up to spike-1 are closed: the history is learned, nothing anomalous is published.
	mins.closedThrough = at(spike - 1)
	st, err := job.Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Judged == 0 || !st.Through.Equal(at(spike-1)) || len(pub.published) != 0 {
		t.Fatalf("first run %+v, published %d", st, len(pub.published))
	}
	// The spike's minute closes; publishing fails: the run fails and saves nothing.
	mins.closedThrough = at(spike + 2)
	pub.down = true
	if _, err := job.Run(ctx, false); err == nil {
		t.Fatal("run with the publisher down succeeded before the last attempt")
	}
	// Publishing works but saving fails: the event is out, the state is not saved.
	pub.down, states.down = false, true
	if _, err := job.Run(ctx, false); err == nil {
		t.Fatal("run with the store down succeeded")
	}
	states.down = false
	st, err = job.Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	// The re-run published the same events again (same ids, site and both categories); nothing else.
	n := len(pub.published)
	if n != 6 || cmp.Diff(ids(pub.published[:n/2]), ids(pub.published[n/2:])) != "" {
		t.Fatalf("published %d events: %v", n, ids(pub.published))
	}
	for _, e := range pub.published {
		// The full event is identical, not only its id.
		if e.Subject() == "/traffic/site" && !eventsEqual(e, pub.published[0]) {
			t.Errorf("re-published event differs: %s vs %s", e, pub.published[0])
		}
	}
	// A later run over the same state publishes nothing more for this episode.
	mins.closedThrough = at(spike + 8)
	if _, err := job.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	var site []event.Event
	for _, e := range pub.published {
		if e.Subject() == "/traffic/site" {
			site = append(site, e)
		}
	}
	if len(site) != 2 {
		t.Fatalf("site events %v, want the one episode (published twice with one id)", ids(site))
	}
	e := site[0]
	if e.Type() != anomaly.TypeAnomalyDetected || e.Source() != anomaly.EventSource || e.ID() != anomaly.EpisodeID("site", at(spike)) || !e.Time().Equal(at(spike)) {
		t.Errorf("event attributes: %s", e)
	}
	var data anomaly.Data
	if err := e.DataAs(&data); err != nil {
		t.Fatal(err)
	}
	if !data.Minute.Equal(at(spike)) || data.Observed != xs[spike] || data.Direction != "up" || data.Kind != "spike" || data.Score < 5 || data.Expected <= 0 {
		t.Errorf("data %+v", data)
	}
	// On the last attempt an undeliverable event is parked and the run succeeds.
	xs2 := 3*1440 + 1000
	mins.counts[at(xs2)] = trends.MinuteCounts{Minute: at(xs2), Views: 5 * int64(xs[xs2]), Categories: map[string]int64{"tools": 3 * int64(xs[xs2])}}
	mins.closedThrough = at(xs2)
	now = at(xs2 + 12)
	pub.down = true
	if _, err := job.Run(ctx, true); err != nil {
		t.Fatalf("last attempt: %v", err)
	}
	if len(pub.parked) == 0 {
		t.Error("nothing parked on the last attempt")
	}
}

func eventsEqual(a, b event.Event) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func ids(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Subject()+" "+e.ID())
	}
	return out
}
