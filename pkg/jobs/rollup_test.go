package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/jobs"
)

// checkCounts compares products.csv with the truth: views, carts and purchases exactly; viewers
// and sessions exactly while the sketch is exact (below 512), within 4 standard errors otherwise.
func checkCounts(t *testing.T, got, want map[string]row) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d products in products.csv, want %d", len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("product %s missing", id)
			continue
		}
		if g.views != w.views || g.carts != w.carts || g.purchases != w.purchases || g.category != w.category {
			t.Errorf("%s: got views %d carts %d purchases %d category %q, want %d %d %d %q", id, g.views, g.carts, g.purchases, g.category, w.views, w.carts, w.purchases, w.category)
		}
		for _, c := range []struct {
			name      string
			got, want int64
		}{{"viewers", g.viewers, w.viewers}, {"sessions", g.sessions, w.sessions}} {
			if c.want <= int64(jobs.ExactLimit(jobs.ProductPrecision)) {
				if c.got != c.want {
					t.Errorf("%s: %s %d, want exactly %d", id, c.name, c.got, c.want)
				}
			} else if math.Abs(float64(c.got-c.want)) > 4*0.0163*float64(c.want) {
				t.Errorf("%s: %s %d, want %d within 6.5%%", id, c.name, c.got, c.want)
			}
		}
	}
}

func TestRunDayReportsAndEvent(t *testing.T) {
	f := newFixture(t)
	clicks := genClicks(12000, day, 1)
	names := f.writeFiles(clicks)
	// Clicks of the next day must not count.
	f.writeFiles(genClicks(300, day.AddDate(0, 0, 1), 2)[:100])

	res, err := f.job.RunDay(context.Background(), day, jobs.RunOptions{By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != jobs.DayCompleted || res.Files != len(names) || res.Read != len(names) || res.Corrupt != 0 {
		t.Fatalf("result %+v, want %d files read and merged", res, len(names))
	}
	checkCounts(t, f.productsCSV(day), expected(clicks))

	s := f.summary(day)
	var events, views, poison, skipped int64
	for _, c := range clicks {
		events++
		switch c.kind {
		case "com.contoso.clickstream.product.viewed":
			views++
		case "malformed":
			poison++
		case "other":
			skipped++
		}
	}
	if s.Events != events || s.Views != views || s.Poison != poison || s.Skipped != skipped || s.Files.Merged != len(names) {
		t.Errorf("summary events %d views %d poison %d skipped %d files %d, want %d %d %d %d %d",
			s.Events, s.Views, s.Poison, s.Skipped, s.Files.Merged, events, views, poison, skipped, len(names))
	}
	var reasons int64
	for _, n := range s.PoisonReasons {
		reasons += n
	}
	if reasons != poison || len(s.PoisonReasons) < 2 {
		t.Errorf("poison reasons %v do not add up to %d", s.PoisonReasons, poison)
	}
	viewers, sessions := map[string]bool{}, map[string]bool{}
	for _, c := range clicks {
		if c.product != "" {
			viewers[c.viewer], sessions[c.session] = true, true
		}
	}
	if d := math.Abs(float64(s.UniqueViewers - int64(len(viewers)))); d > 4*0.0082*float64(len(viewers))+1 {
		t.Errorf("uniqueViewers %d, want about %d", s.UniqueViewers, len(viewers))
	}
	if d := math.Abs(float64(s.Sessions - int64(len(sessions)))); d > 4*0.0082*float64(len(sessions))+1 {
		t.Errorf("sessions %d, want about %d", s.Sessions, len(sessions))
	}

	if len(f.pub.events) != 1 {
		t.Fatalf("%d events published, want 1", len(f.pub.events))
	}
	ev := f.pub.events[0]
	if ev.ID() != jobs.CompletionID(jobs.JobRollup, day) || ev.Type() != jobs.TypeJobCompleted ||
		ev.Source() != "/contoso/batch" || ev.Subject() != "/jobs/clickstream-rollup/2026-11-24" {
		t.Errorf("event %s %s %s %s", ev.ID(), ev.Type(), ev.Source(), ev.Subject())
	}
	validateCompletion(t, ev.Data())
	var data jobs.Completed
	if err := json.Unmarshal(ev.Data(), &data); err != nil {
		t.Fatal(err)
	}
	if data.Counts["views"] != views || data.Counts["files"] != int64(len(names)) || len(data.Outputs) != 2 ||
		!data.Period.Start.Equal(day) || !data.Period.End.Equal(day.AddDate(0, 0, 1)) || data.RunID != res.RunID {
		t.Errorf("event data %s", ev.Data())
	}
	for _, o := range data.Outputs {
		if !strings.HasPrefix(o.URL, "file://") || !strings.HasSuffix(o.URL, o.Name) {
			t.Errorf("output %+v", o)
		}
	}
	ds, _, err := f.stores.Days.Get(context.Background(), jobs.JobRollup, "2026-11-24")
	if err != nil || ds.Status != jobs.DayCompleted || ds.Completed == nil {
		t.Fatalf("day state %+v, %v", ds, err)
	}
}

var completionSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	return c.Compile("../../docs/schemas/com.contoso.batch.job.completed.v1.json")
})

func validateCompletion(t *testing.T, data []byte) {
	t.Helper()
	sch, err := completionSchema()
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("completion data does not match its schema: %v\n%s", err, data)
	}
}

// The same day twice gives the same outputs, byte for byte, and the same event id; a timer run of a
// completed day does nothing.
func TestRunDayIsIdempotent(t *testing.T) {
	f := newFixture(t)
	f.writeFiles(genClicks(6000, day, 3))
	ctx := context.Background()
	first, err := f.job.RunDay(ctx, day, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csv1, sum1 := f.report(day, "products.csv"), f.report(day, "summary.json")
	recs1 := dumpRecommendations(t, f)

	again, err := f.job.RunDay(ctx, day, jobs.RunOptions{})
	if err != nil || again.Status != jobs.AlreadyCompleted || len(f.pub.events) != 1 {
		t.Fatalf("second timer run: %+v, %v, %d events", again, err, len(f.pub.events))
	}
	for _, opts := range []jobs.RunOptions{{Rerun: true}, {Reprocess: true}} {
		f.clock = f.clock.Add(time.Hour)
		res, err := f.job.RunDay(ctx, day, opts)
		if err != nil {
			t.Fatal(err)
		}
		if opts.Reprocess && res.Read != first.Read || !opts.Reprocess && res.Read != 0 {
			t.Errorf("%+v: read %d files", opts, res.Read)
		}
		if !bytes.Equal(csv1, f.report(day, "products.csv")) || !bytes.Equal(sum1, f.report(day, "summary.json")) {
			t.Errorf("%+v: outputs differ from the first run", opts)
		}
		if diff := cmp.Diff(recs1, dumpRecommendations(t, f)); diff != "" {
			t.Errorf("%+v: recommendations changed (-first +now):\n%s", opts, diff)
		}
	}
	if len(f.pub.events) != 3 || f.pub.events[1].ID() != f.pub.events[0].ID() || f.pub.events[2].ID() != f.pub.events[0].ID() {
		t.Fatalf("re-runs published %d events with ids %v", len(f.pub.events), ids(f.pub.events))
	}
}

func ids(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID())
	}
	return out
}

// Files read one by one (CaptureFileCreated) and then merged by the timer give exactly the outputs
// of the timer reading them all, and the timer does not read them again.
func TestPerFileThenDailyEqualsDaily(t *testing.T) {
	ctx := context.Background()
	clicks := genClicks(6000, day, 4)
	a, b := newFixture(t), newFixture(t)
	names := a.writeFiles(clicks)
	b.writeFiles(clicks)
	// In reverse order, as Event Grid may deliver them.
	for i := len(names) - 1; i >= 0; i-- {
		p, _ := capture.ParsePath(names[i])
		st, part, err := a.job.ProcessFile(ctx, capture.File{Name: names[i], Path: p}, jobs.FileOptions{Announced: -1, By: "CaptureFileCreated", CheckDay: true})
		if err != nil || st.Status != jobs.FileProcessed || part == nil {
			t.Fatalf("%s: %+v, %v", names[i], st, err)
		}
		// A redelivered notification does not read the file again.
		if _, part, err := a.job.ProcessFile(ctx, capture.File{Name: names[i], Path: p}, jobs.FileOptions{Announced: -1}); err != nil || part != nil {
			t.Fatalf("redelivery read the file again (%v)", err)
		}
	}
	ra, err := a.job.RunDay(ctx, day, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ra.Read != 0 || ra.Files != len(names) {
		t.Fatalf("timer after per-file processing: %+v", ra)
	}
	if _, err := b.job.RunDay(ctx, day, jobs.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"products.csv", "summary.json"} {
		if !bytes.Equal(a.report(day, file), b.report(day, file)) {
			t.Errorf("%s differs between per-file and daily processing", file)
		}
	}
	if diff := cmp.Diff(dumpRecommendations(t, b), dumpRecommendations(t, a)); diff != "" {
		t.Errorf("recommendations differ (-daily +per-file):\n%s", diff)
	}
}

// A corrupt file is dead-lettered with its name and reason, and the rest of the day is processed.
func TestCorruptFileIsDeadLetteredAndDaySkipsIt(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	clicks := genClicks(6000, day, 5)
	names := f.writeFiles(clicks)
	bad := names[len(names)/2]
	path := filepath.Join(f.capture.Root, filepath.FromSlash(bad))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)*2/3], 0o644); err != nil { // truncated
		t.Fatal(err)
	}
	res, err := f.job.RunDay(ctx, day, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Corrupt != 1 || res.Files != len(names)-1 {
		t.Fatalf("result %+v", res)
	}
	s := f.summary(day)
	if diff := cmp.Diff([]string{bad}, s.Files.Corrupt); diff != "" {
		t.Errorf("summary corrupt files (-want +got):\n%s", diff)
	}
	var good []click
	badPath, _ := capture.ParsePath(bad)
	for _, c := range clicks {
		if c.ev.EnqueuedTime.Truncate(5*time.Minute).Equal(badPath.Window) && c.partition == atoi(badPath.Partition) {
			continue
		}
		good = append(good, c)
	}
	checkCounts(t, f.productsCSV(day), expected(good))
	var recs []deadletter.Record
	if err := f.dead.List(ctx, jobs.DeadLetterFunction, func(r deadletter.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || !strings.Contains(recs[0].Reason, bad) || !strings.Contains(recs[0].Reason, "capture file corrupt") ||
		recs[0].Kind != deadletter.KindPoison || !strings.Contains(recs[0].Body, bad) {
		t.Fatalf("dead letters %+v", recs)
	}
	st, _, err := f.stores.Files.Get(ctx, "clickstream-rollup/2026-11-24", fileIDOf(t, f, bad))
	if err != nil || st.Status != jobs.FileCorrupt {
		t.Fatalf("file state %+v, %v", st, err)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func fileIDOf(t *testing.T, f *fixture, name string) string {
	t.Helper()
	var id string
	f.stores.Files.List(context.Background(), "clickstream-rollup/2026-11-24", func(i string, st jobs.FileState, _ docstore.ETag) error {
		if st.Name == name {
			id = i
		}
		return nil
	})
	return id
}

// failingObjects fails Put after n successes (a crash mid-run).
type failingObjects struct {
	jobs.Objects
	left int
}

func (o *failingObjects) Put(ctx context.Context, name string, data []byte, ct string) error {
	if o.left <= 0 {
		return errors.New("storage unavailable")
	}
	o.left--
	return o.Objects.Put(ctx, name, data, ct)
}

// A run that fails half-way (storage down, then the publisher down) is resumed by the retry: files
// already processed are not read again, and the outputs equal an uninterrupted run's.
func TestRunDayResumesAfterFailures(t *testing.T) {
	ctx := context.Background()
	clicks := genClicks(6000, day, 6)
	f, ref := newFixture(t), newFixture(t)
	names := f.writeFiles(clicks)
	ref.writeFiles(clicks)
	if _, err := ref.job.RunDay(ctx, day, jobs.RunOptions{}); err != nil {
		t.Fatal(err)
	}

	objs := &failingObjects{Objects: f.reports, left: len(names) / 3}
	f.job.Reports = objs
	if _, err := f.job.RunDay(ctx, day, jobs.RunOptions{}); err == nil {
		t.Fatal("no error with storage failing")
	}
	ds, _, _ := f.stores.Days.Get(ctx, jobs.JobRollup, "2026-11-24")
	if ds.Status != jobs.DayRunning || ds.LastError == "" {
		t.Fatalf("day after a failure: %+v", ds)
	}
	runID := ds.RunID

	f.job.Reports = f.reports
	f.pub.fail = errors.New("topic unavailable")
	res, err := f.job.RunDay(ctx, day, jobs.RunOptions{})
	if err == nil {
		t.Fatal("no error with the publisher failing")
	}
	if res.Read != len(names)-len(names)/3 {
		t.Errorf("second attempt read %d files, want the %d not done", res.Read, len(names)-len(names)/3)
	}
	f.pub.fail = nil
	res, err = f.job.RunDay(ctx, day, jobs.RunOptions{})
	if err != nil || res.Read != 0 || res.RunID != runID {
		t.Fatalf("third attempt: %+v, %v (run id %s, want %s)", res, err, res.RunID, runID)
	}
	for _, file := range []string{"products.csv", "summary.json"} {
		if !bytes.Equal(f.report(day, file), ref.report(day, file)) {
			t.Errorf("%s differs from an uninterrupted run", file)
		}
	}
	if diff := cmp.Diff(dumpRecommendations(t, ref), dumpRecommendations(t, f)); diff != "" {
		t.Errorf("recommendations differ (-uninterrupted +resumed):\n%s", diff)
	}
}

// On the last attempt an undeliverable completion event is parked (by the publisher) and the day
// completes.
func TestLastAttemptParksTheEvent(t *testing.T) {
	f := newFixture(t)
	f.writeFiles(genClicks(500, day, 7))
	f.pub.fail = errors.New("topic unavailable")
	res, err := f.job.RunDay(context.Background(), day, jobs.RunOptions{LastAttempt: true})
	if err != nil || res.Status != jobs.DayCompleted || len(f.pub.parked) != 1 || f.pub.parked[0].ID() != res.EventID {
		t.Fatalf("%+v, %v, parked %d", res, err, len(f.pub.parked))
	}
}

func TestRunDayRefusesADayNotOver(t *testing.T) {
	f := newFixture(t)
	if _, err := f.job.RunDay(context.Background(), now, jobs.RunOptions{}); !errors.Is(err, jobs.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

// A late file announced after its day completed marks the day stale; the next timer run completes
// it again with the file.
func TestLateFileMakesTheDayStale(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	clicks := genClicks(3000, day, 8)
	f.writeFiles(clicks[:2000])
	if _, err := f.job.Scheduled(ctx, now, jobs.Timer{}, jobs.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	late := capture.Path{Namespace: "contoso-ns", EventHub: "clickstream", Partition: "9", Window: day.Add(23*time.Hour + 55*time.Minute)}
	var evs []capture.Event
	for _, c := range clicks[2000:] {
		evs = append(evs, c.ev)
	}
	f.writeFile(late, evs)
	f.clock = now.Add(time.Hour)
	if _, _, err := f.job.ProcessFile(ctx, capture.File{Name: late.Name(), Path: late}, jobs.FileOptions{Announced: int64(len(evs)), CheckDay: true}); err != nil {
		t.Fatal(err)
	}
	ds, _, _ := f.stores.Days.Get(ctx, jobs.JobRollup, "2026-11-24")
	if !ds.Stale {
		t.Fatalf("day not stale after a late file: %+v", ds)
	}
	f.clock = now.AddDate(0, 0, 1)
	res, err := f.job.Scheduled(ctx, f.clock, jobs.Timer{}, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Days) != 2 || res.Days[0].Day != "2026-11-24" || res.Days[0].Read != 0 {
		t.Fatalf("next run: %+v", res.Days)
	}
	// The late file's events (partition 9) are in the day now.
	total := expected(clicks)
	got := f.productsCSV(day)
	var gotViews, wantViews int64
	for id := range total {
		gotViews += got[id].views
		wantViews += total[id].views
	}
	if gotViews != wantViews {
		t.Fatalf("views %d after re-completion, want %d", gotViews, wantViews)
	}
}

// A timer that fires past due catches up the missed days, at most CatchUpDays back, oldest first;
// a spent budget leaves the rest pending for the next run.
func TestScheduledCatchUp(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for i := 1; i <= 10; i++ {
		d := now.AddDate(0, 0, -i)
		f.writeFiles(genClicks(200, time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC), uint64(i)))
	}
	// Normally only yesterday.
	res, err := f.job.Scheduled(ctx, now, jobs.Timer{LastRun: now.AddDate(0, 0, -1)}, jobs.RunOptions{})
	if err != nil || len(res.Days) != 1 || res.Days[0].Day != "2026-11-24" {
		t.Fatalf("on-time run: %+v, %v", res, err)
	}
	// The next three runs were missed; the one after fires past due: the three missed days and yesterday.
	later := now.AddDate(0, 0, 4)
	f.clock = later
	res, err = f.job.Scheduled(ctx, later, jobs.Timer{PastDue: true, LastRun: now}, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"}, dayNames(res.Days)); diff != "" {
		t.Fatalf("past-due run (-want +got):\n%s", diff)
	}
	// Missed for a month: only the last CatchUpDays, and a budget of one day leaves the rest pending.
	g := newFixture(t)
	g.job.Config.Budget = time.Nanosecond
	g.clock = now
	// Time passes while a day runs.
	g.job.Now = func() time.Time { g.clock = g.clock.Add(time.Second); return g.clock }
	res, err = g.job.Scheduled(ctx, now, jobs.Timer{PastDue: true, LastRun: now.AddDate(0, -1, 0)}, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"}
	if diff := cmp.Diff([]string{"2026-11-18"}, dayNames(res.Days)); diff != "" {
		t.Fatalf("budgeted run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, res.Pending); diff != "" {
		t.Fatalf("pending (-want +got):\n%s", diff)
	}
	g.job.Config.Budget = 0
	res, err = g.job.Scheduled(ctx, g.clock, jobs.Timer{LastRun: now}, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, dayNames(res.Days)); diff != "" {
		t.Fatalf("next run takes the pending days (-want +got):\n%s", diff)
	}
}

func dayNames(rs []jobs.DayResult) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Day)
	}
	return out
}

// On the last attempt a failing day stays pending and the run succeeds.
func TestScheduledLastAttemptLeavesDayPending(t *testing.T) {
	f := newFixture(t)
	f.writeFiles(genClicks(300, day, 9))
	f.job.Reports = &failingObjects{Objects: f.reports}
	res, err := f.job.Scheduled(context.Background(), now, jobs.Timer{}, jobs.RunOptions{})
	if err == nil {
		t.Fatal("before the last attempt the failure must fail the invocation")
	}
	res, err = f.job.Scheduled(context.Background(), now, jobs.Timer{}, jobs.RunOptions{LastAttempt: true})
	if err != nil || len(res.Pending) != 1 {
		t.Fatalf("last attempt: %+v, %v", res, err)
	}
	ds, _, _ := f.stores.Days.Get(context.Background(), jobs.JobRollup, "2026-11-24")
	if ds.Status == jobs.DayCompleted || ds.LastError == "" {
		t.Fatalf("day %+v", ds)
	}
}

func dumpRecommendations(t *testing.T, f *fixture) map[string]jobs.Recommendation {
	t.Helper()
	out := map[string]jobs.Recommendation{}
	for id := range expectedProducts(f) {
		r, _, err := f.stores.Recommendations.Get(context.Background(), id, id)
		if err == nil {
			r.UpdatedAt = time.Time{}
			out[id] = r
		}
	}
	return out
}

func expectedProducts(f *fixture) map[string]bool {
	out := map[string]bool{}
	for id := range f.productsCSV(day) {
		out[id] = true
	}
	return out
}

// racingFiles lets a CaptureFileCreated invocation process a file right after the run looked at the
// day's file states, before it completes: the race a late notification can win.
type racingFiles struct {
	docstore.Collection[jobs.FileState]
	after func()
}

func (r *racingFiles) List(ctx context.Context, pk string, fn func(string, jobs.FileState, docstore.ETag) error) error {
	err := r.Collection.List(ctx, pk, fn)
	if after := r.after; after != nil {
		r.after = nil
		after()
	}
	return err
}

func TestFileProcessedDuringTheRunKeepsTheDayStale(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	clicks := genClicks(1500, day, 10)
	f.writeFiles(clicks[:1000])
	late := capture.Path{Namespace: "contoso-ns", EventHub: "clickstream", Partition: "8", Window: day.Add(20 * time.Hour)}
	var evs []capture.Event
	for _, c := range clicks[1000:] {
		evs = append(evs, c.ev)
	}
	racing := &racingFiles{Collection: f.stores.Files}
	racing.after = func() {
		f.writeFile(late, evs)
		if _, _, err := f.job.ProcessFile(ctx, capture.File{Name: late.Name(), Path: late}, jobs.FileOptions{Announced: -1, CheckDay: true}); err != nil {
			t.Error(err)
		}
	}
	f.job.Stores.Files = racing
	if _, err := f.job.RunDay(ctx, day, jobs.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	ds, _, _ := f.stores.Days.Get(ctx, jobs.JobRollup, "2026-11-24")
	if ds.Status != jobs.DayCompleted || !ds.Stale {
		t.Fatalf("day %+v: want completed and stale", ds)
	}
	if s := f.summary(day); s.Events != 1000 {
		t.Fatalf("first run merged %d events, want the 1000 listed", s.Events)
	}
	res, err := f.job.Scheduled(ctx, now, jobs.Timer{}, jobs.RunOptions{})
	if err != nil || len(res.Days) != 1 || res.Days[0].Status != jobs.DayCompleted {
		t.Fatalf("next run %+v, %v", res, err)
	}
	if s := f.summary(day); s.Events != int64(len(clicks)) {
		t.Fatalf("events %d after the next run, want %d", s.Events, len(clicks))
	}
	if ds, _, _ := f.stores.Days.Get(ctx, jobs.JobRollup, "2026-11-24"); ds.Stale {
		t.Fatal("still stale")
	}
}
