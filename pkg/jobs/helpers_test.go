package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/clickgen"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/jobs"
)

// day is the UTC day the tests roll up; "now" is the next day's timer run.
var (
	day = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	now = time.Date(2026, 11, 25, 0, 30, 0, 0, time.UTC)
)

// fakePublisher records published events; failures (if set) are returned before the last attempt.
type fakePublisher struct {
	mu     sync.Mutex
	events []event.Event
	fail   error
	parked []event.Event
}

func (p *fakePublisher) Publish(ctx context.Context, evs []event.Event, lastAttempt bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		if lastAttempt {
			p.parked = append(p.parked, evs...)
			return nil
		}
		return p.fail
	}
	p.events = append(p.events, evs...)
	return nil
}

// fixture is a rollup on the embedded stores, a capture.Dir and a reports jobs.Dir.
type fixture struct {
	t       testing.TB
	root    string
	capture capture.Dir
	reports jobs.Dir
	db      *embedded.DB
	stores  jobs.Stores
	dead    *deadletter.Docs
	pub     *fakePublisher
	clock   time.Time
	job     *jobs.Rollup
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	root := t.TempDir()
	db, err := embedded.Open(filepath.Join(root, "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, root: root, capture: capture.Dir{Root: filepath.Join(root, "capture")},
		reports: jobs.Dir{Root: filepath.Join(root, "reports")}, db: db, pub: &fakePublisher{},
		dead: deadlettertest.Local(t, jobs.DeadLetterFunction), clock: now}
	days, err := embedded.NewCollection[jobs.DayState](db, "jobState")
	if err != nil {
		t.Fatal(err)
	}
	files, err := embedded.NewCollection[jobs.FileState](db, "jobState.files")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := embedded.NewCollection[jobs.Recommendation](db, "recommendations")
	if err != nil {
		t.Fatal(err)
	}
	f.stores = jobs.Stores{Days: days, Files: files, Recommendations: recs}
	f.job = &jobs.Rollup{Source: f.capture, Container: "capture", Reports: f.reports, Stores: f.stores, Config: jobs.Config{Concurrency: 4},
		DeadLetters: f.dead, Publisher: f.pub, Now: func() time.Time { return f.clock },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return f
}

// click is a generated event and where it goes.
type click struct {
	ev        capture.Event
	partition int
	// truth, decoded independently of pkg/events with encoding/json (empty for non-clicks)
	kind, product, category, viewer, session string
}

// genClicks makes n clickgen events spread over the UTC day d (one every 86400/n seconds on average).
func genClicks(n int, d time.Time, seed uint64) []click {
	cfg := clickgen.Default()
	cfg.Seed = seed
	cfg.Products = 300
	cfg.Shoppers = 400
	cfg.Start = d.Add(time.Second)
	cfg.Rate = time.Duration(float64(24*time.Hour) / float64(n) * 0.95)
	g := clickgen.New(cfg)
	seq := map[int]int64{}
	out := make([]click, 0, n)
	for range n {
		e := g.Next()
		if !e.Time.Before(d.AddDate(0, 0, 1)) {
			break
		}
		c := click{partition: e.Partition, kind: e.Kind}
		c.ev = capture.Event{SequenceNumber: seq[e.Partition], Offset: fmt.Sprint(seq[e.Partition] * 512),
			EnqueuedTime: e.Time.Add(40 * time.Millisecond), Properties: e.Properties, Body: e.Body}
		seq[e.Partition]++
		if !e.Malformed && e.Kind != "other" {
			c.product, c.category, c.viewer, c.session = truth(e)
		}
		out = append(out, c)
	}
	return out
}

// truth reads a generated click with encoding/json, not with the code under test.
func truth(e clickgen.Event) (product, category, viewer, session string) {
	var d struct{ ProductID, Category, UserID, SessionID string }
	body := e.Body
	if e.Properties == nil {
		var ce struct{ Data json.RawMessage }
		if err := json.Unmarshal(body, &ce); err != nil {
			panic(err)
		}
		body = ce.Data
	}
	if err := json.Unmarshal(body, &d); err != nil {
		panic(err)
	}
	viewer = d.UserID
	if viewer == "" {
		viewer = d.SessionID
	}
	return d.ProductID, d.Category, viewer, d.SessionID
}

// writeFiles writes clicks as Capture files: one per partition and 5-minute window of enqueued time.
// It returns the files' names in capture order.
func (f *fixture) writeFiles(clicks []click) []string {
	f.t.Helper()
	type key struct {
		p int
		w time.Time
	}
	groups := map[key][]capture.Event{}
	for _, c := range clicks {
		k := key{c.partition, c.ev.EnqueuedTime.Truncate(5 * time.Minute)}
		groups[k] = append(groups[k], c.ev)
	}
	var names []string
	for k, evs := range groups {
		p := capture.Path{Namespace: "contoso-ns", EventHub: "clickstream", Partition: fmt.Sprint(k.p), Window: k.w}
		f.writeFile(p, evs)
		names = append(names, p.Name())
	}
	sort.Strings(names)
	return names
}

func (f *fixture) writeFile(p capture.Path, evs []capture.Event) {
	f.t.Helper()
	out, err := f.capture.Create(p)
	if err != nil {
		f.t.Fatal(err)
	}
	w, err := capture.NewWriter(out, capture.WriterOptions{BlockRecords: 50})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range evs {
		if err := w.Write(e); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) report(d time.Time, file string) []byte {
	f.t.Helper()
	b, err := f.reports.Get(context.Background(), "daily/"+d.Format("2006-01-02")+"/"+file)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) summary(d time.Time) jobs.Summary {
	f.t.Helper()
	var s jobs.Summary
	if err := json.Unmarshal(f.report(d, "summary.json"), &s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

type row struct {
	views, viewers, sessions, carts, purchases int64
	category                                   string
}

// productsCSV parses products.csv into rows by product id.
func (f *fixture) productsCSV(d time.Time) map[string]row {
	f.t.Helper()
	lines := strings.Split(strings.TrimSpace(string(f.report(d, "products.csv"))), "\n")
	if lines[0] != "productId,category,views,uniqueViewers,sessions,addedToCart,purchased,cartRate,conversionRate" {
		f.t.Fatalf("header %q", lines[0])
	}
	out := map[string]row{}
	for _, l := range lines[1:] {
		var r row
		var id string
		parts := strings.Split(l, ",")
		id, r.category = parts[0], parts[1]
		fmt.Sscan(parts[2], &r.views)
		fmt.Sscan(parts[3], &r.viewers)
		fmt.Sscan(parts[4], &r.sessions)
		fmt.Sscan(parts[5], &r.carts)
		fmt.Sscan(parts[6], &r.purchases)
		out[id] = r
	}
	return out
}

// expected computes products.csv's counts from the truth of the clicks.
func expected(clicks []click) map[string]row {
	type acc struct {
		row
		viewers, sessions map[string]bool
	}
	m := map[string]*acc{}
	for _, c := range clicks {
		if c.product == "" {
			continue
		}
		a := m[c.product]
		if a == nil {
			a = &acc{viewers: map[string]bool{}, sessions: map[string]bool{}}
			a.category = c.category
			m[c.product] = a
		}
		switch c.kind {
		case "com.contoso.clickstream.product.viewed":
			a.views++
			a.viewers[c.viewer] = true
			a.sessions[c.session] = true
		case "com.contoso.clickstream.product.addedtocart":
			a.carts++
		case "com.contoso.clickstream.product.purchased":
			a.purchases++
		}
	}
	out := map[string]row{}
	for id, a := range m {
		r := a.row
		r.viewers, r.sessions = int64(len(a.viewers)), int64(len(a.sessions))
		out[id] = r
	}
	return out
}

func dirFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return buf.Bytes()
}
