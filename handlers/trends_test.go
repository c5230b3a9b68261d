package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/anomaly"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/trends"
)

// trendsClock is the handler's clock in these tests.
type trendsClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *trendsClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *trendsClock) Set(t time.Time)     { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *trendsClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// opCounter counts a collection's operations and can make its writes fail like an unavailable store.
type opCounter[T any] struct {
	docstore.Collection[T]
	mu                sync.Mutex
	gets, puts, lists int
	down              bool
}

func (c *opCounter[T]) Get(ctx context.Context, pk, id string) (T, docstore.ETag, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Collection.Get(ctx, pk, id)
}

func (c *opCounter[T]) Put(ctx context.Context, pk, id string, v T, o docstore.PutOptions) (docstore.ETag, error) {
	c.mu.Lock()
	down := c.down
	if !down {
		c.puts++
	}
	c.mu.Unlock()
	if down {
		var zero docstore.ETag
		return zero, errDown
	}
	return c.Collection.Put(ctx, pk, id, v, o)
}

func (c *opCounter[T]) List(ctx context.Context, pk string, fn func(string, T, docstore.ETag) error) error {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.Collection.List(ctx, pk, fn)
}

func (c *opCounter[T]) counts() (gets, puts, lists int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets, c.puts, c.lists
}

func (c *opCounter[T]) reset() {
	c.mu.Lock()
	c.gets, c.puts, c.lists = 0, 0, 0
	c.mu.Unlock()
}

// anomalyPublisher records published events (publish.Publisher's contract: fail before the last
// attempt, park on it).
type anomalyPublisher struct {
	mu        sync.Mutex
	down      bool
	published []event.Event
	parked    []event.Event
}

func (p *anomalyPublisher) Publish(ctx context.Context, evs []event.Event, lastAttempt bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		if lastAttempt {
			p.parked = append(p.parked, evs...)
			return nil
		}
		return fmt.Errorf("events not delivered: 503")
	}
	p.published = append(p.published, evs...)
	return nil
}

// trendsEnv is the handler wired to embedded trends stores, served over HTTP like the host sees it.
type trendsEnv struct {
	t     testing.TB
	srv   *httptest.Server
	h     http.Handler
	host  *hostsim.Client
	clock *trendsClock
	aggs  *opCounter[trends.Aggregate]
	prog  *opCounter[trends.Progress]
	tots  *opCounter[trends.Totals]
	snaps *opCounter[trends.Snapshot]
	state *opCounter[trends.MaterializerState]
	pub   *anomalyPublisher
	dead  *deadletter.Docs
	deps  handlers.Deps
}

var trendsT0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newTrendsEnv(t testing.TB) *trendsEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &trendsEnv{t: t, clock: &trendsClock{now: trendsT0}, pub: &anomalyPublisher{}, dead: deadlettertest.Local(t, handlers.Functions()...)}
	e.aggs = &opCounter[trends.Aggregate]{Collection: mustOpen[trends.Aggregate](t, db, "trendAggregates")}
	e.prog = &opCounter[trends.Progress]{Collection: mustOpen[trends.Progress](t, db, "trendAggregates.progress")}
	e.tots = &opCounter[trends.Totals]{Collection: mustOpen[trends.Totals](t, db, "trendSnapshots.totals")}
	e.snaps = &opCounter[trends.Snapshot]{Collection: mustOpen[trends.Snapshot](t, db, "trendSnapshots")}
	e.state = &opCounter[trends.MaterializerState]{Collection: mustOpen[trends.MaterializerState](t, db, "trendSnapshots.state")}
	svc := &trends.Service{Stores: trends.Stores{Aggregates: e.aggs, Progress: e.prog, Totals: e.tots, Snapshots: e.snaps, State: e.state}, Now: e.clock.Now}
	job := &anomaly.Job{Minutes: svc, States: mustOpen[anomaly.Series](t, db, "trendSnapshots.anomaly"), Publisher: e.pub, Now: e.clock.Now}
	e.deps = handlers.Deps{
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		DeadLetters: e.dead,
		Now:         e.clock.Now,
		Trends:      svc,
		Anomalies:   job,
	}
	e.h = handlers.New(e.deps)
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	e.host = &hostsim.Client{BaseURL: e.srv.URL}
	return e
}

func mustOpen[T any](t testing.TB, db *embedded.DB, name string) *embedded.Collection[T] {
	c, err := embedded.NewCollection[T](db, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *trendsEnv) invoke(fn string, body []byte) *hostsim.Result {
	e.t.Helper()
	return invokeAsHost(e.t, e.host, fn, body)
}

// view is a structured product.viewed CloudEvent at trendsT0+sec.
func view(id, product, category string, sec int) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"/web","type":"com.contoso.clickstream.product.viewed","time":%q,"data":{"sessionId":"s-%s","productId":%q,"category":%q}}`,
		id, trendsT0.Add(time.Duration(sec)*time.Second).Format(time.RFC3339Nano), id, product, category)
}

// trendsBatch renders the host's envelope for events of one partition, sequence numbers from first,
// each enqueued a second after its event time (late by enqueuedAfter when given).
func trendsBatch(partition string, first int64, retry *protocol.RetryContext, bodies ...[]byte) []byte {
	evs := make([]hostsim.Event, len(bodies))
	for i, b := range bodies {
		var probe struct {
			Time time.Time `json:"time"`
		}
		_ = json.Unmarshal(b, &probe)
		enq := probe.Time.Add(time.Second)
		if probe.Time.IsZero() {
			enq = trendsT0
		}
		evs[i] = hostsim.Event{Body: b, SequenceNumber: first + int64(i), Offset: 100 * (first + int64(i)), EnqueuedTime: enq}
	}
	pc := protocol.PartitionContext{FullyQualifiedNamespace: "contoso.servicebus.windows.net", EventHubName: "clickstream", ConsumerGroup: "trends", PartitionID: partition}
	return hostsim.EventHubBatch(handlers.FnTrends, "events", pc, evs, retry)
}

func (e *trendsEnv) deadLetters() []deadletter.Record {
	e.t.Helper()
	var recs []deadletter.Record
	if err := e.dead.List(context.Background(), handlers.FnTrends, func(r deadletter.Record) error { recs = append(recs, r); return nil }); err != nil {
		e.t.Fatal(err)
	}
	return recs
}

func (e *trendsEnv) tick(fn string) *hostsim.Result {
	e.t.Helper()
	now := e.clock.Now()
	return e.invoke(fn, hostsim.Timer(fn, "timer", now.Add(-time.Minute), now.Add(time.Minute), false, &protocol.RetryContext{MaxRetryCount: 2}))
}

type trendingBody struct {
	Window string               `json:"window"`
	AsOf   string               `json:"asOf"`
	Top    []trends.Entry       `json:"top"`
	Rising []trends.RisingEntry `json:"rising"`
}

// getTrending calls GetTrending through the JSON envelope, as the host does with forwarding off.
func (e *trendsEnv) getTrending(query string) (*protocol.HTTPResponse, []byte) {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://contoso.azurewebsites.net/api/trending"+query, nil)
	env, err := hostsim.HTTP(handlers.FnGetTrending, "req", r, nil, hostsim.FunctionKey("default"))
	if err != nil {
		e.t.Fatal(err)
	}
	res := e.invoke(handlers.FnGetTrending, env)
	if res.Status != 200 {
		e.t.Fatalf("GetTrending host status %d: %s", res.Status, res.Raw)
	}
	out, err := res.HTTPOutput("res")
	if err != nil {
		e.t.Fatal(err)
	}
	return out, []byte(out.Body)
}

// The whole path: the host delivers batches (one twice, with a poison event and a late view), the
// timer materializes once, and GetTrending answers the exact documented shape.
func TestTrendsEndToEnd(t *testing.T) {
	e := newTrendsEnv(t)
	b1 := trendsBatch("0", 10, &protocol.RetryContext{MaxRetryCount: 5},
		view("a1", "p-1", "tools", 5), view("a2", "p-1", "tools", 65), view("a3", "p-2", "garden", 70),
		[]byte(`not a cloud event`),
		[]byte(`{"specversion":"1.0","id":"o1","source":"/web","type":"com.contoso.search.performed","time":"2026-11-25T12:01:00Z","data":{}}`))
	b2 := trendsBatch("1", 500, nil, view("b1", "p-2", "garden", 130), view("b2", "p-2", "garden", 140), view("b3", "p-3", "tools", 150))
	for _, b := range [][]byte{b1, b2, b1} { // b1 delivered twice
		if res := e.invoke(handlers.FnTrends, b); res.Status != 200 {
			t.Fatalf("Trends: %d %s", res.Status, res.Raw)
		}
	}
	// A view enqueued 11 minutes after its event time: counted as late, not in 12:00.
	late := view("late", "p-9", "tools", 10)
	evs := []hostsim.Event{{Body: late, SequenceNumber: 503, EnqueuedTime: trendsT0.Add(11*time.Minute + 10*time.Second)}}
	pc := protocol.PartitionContext{EventHubName: "clickstream", ConsumerGroup: "trends", PartitionID: "1"}
	if res := e.invoke(handlers.FnTrends, hostsim.EventHubBatch(handlers.FnTrends, "events", pc, evs, nil)); res.Status != 200 {
		t.Fatalf("late batch: %d %s", res.Status, res.Raw)
	}
	recs := e.deadLetters()
	if len(recs) != 1 || recs[0].Kind != deadletter.KindPoison || recs[0].SequenceNumber != 13 || recs[0].Partition != "0" {
		t.Fatalf("dead letters %+v, want the one poison event at 0/13", recs)
	}
	e.clock.Set(trendsT0.Add(3*time.Minute + 2*time.Second))
	if res := e.tick(handlers.FnMaterializeTrends); res.Status != 200 {
		t.Fatalf("MaterializeTrends: %d %s", res.Status, res.Raw)
	}
	out, body := e.getTrending("?window=15m&limit=5")
	if out.StatusCode != "200" || !strings.HasPrefix(out.Headers["Content-Type"], "application/json") {
		t.Fatalf("GetTrending: %s %v %s", out.StatusCode, out.Headers, body)
	}
	// The exact shape: these keys and no others.
	var shape map[string]json.RawMessage
	if err := json.Unmarshal(body, &shape); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range shape {
			if !yield(k) {
				return
			}
		}
	})
	if diff := cmp.Diff([]string{"asOf", "materialized", "rising", "top", "window"}, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	var got trendingBody
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := trendingBody{Window: "15m", AsOf: "2026-11-25T12:03:00Z",
		Top:    []trends.Entry{{ProductID: "p-2", Views: 3}, {ProductID: "p-1", Views: 2}, {ProductID: "p-3", Views: 1}},
		Rising: []trends.RisingEntry{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetTrending (-want +got):\n%s\n%s", diff, body)
	}
	// The late view is in the partition's metric.
	p, _, err := e.prog.Collection.Get(context.Background(), "progress", "p1")
	if err != nil || p.Late != 1 {
		t.Errorf("partition 1 progress %+v %v, want 1 late view", p, err)
	}
	// A category, and the forwarded path (enableForwardingHttpRequest) answer the same way.
	_, body = e.getTrending("?window=15m&category=garden")
	if err := json.Unmarshal(body, &got); err != nil || !cmp.Equal(got.Top, []trends.Entry{{ProductID: "p-2", Views: 3}}) {
		t.Errorf("garden: %s", body)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/trending?window=15m&limit=1", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"top":[{"productId":"p-2","views":3}]`) {
		t.Errorf("forwarded: %d %s", rec.Code, rec.Body)
	}
}

// Rising: growth against the previous window of the same length, with a floor.
func TestGetTrendingRising(t *testing.T) {
	e := newTrendsEnv(t)
	var prev, cur [][]byte
	n := 0
	add := func(list *[][]byte, product string, count, sec int) {
		for i := range count {
			n++
			*list = append(*list, view(fmt.Sprintf("v%d", n), product, "tools", sec+i%30))
		}
	}
	// Previous 15 minutes (11:45-11:59) and the current ones (12:00-12:14).
	add(&prev, "steady", 30, -600)
	add(&prev, "riser", 8, -600)
	add(&prev, "tiny", 1, -600)
	add(&cur, "steady", 31, 60)
	add(&cur, "riser", 25, 60)
	add(&cur, "tiny", 3, 60)
	add(&cur, "newcomer", 12, 60)
	e.clock.Set(trendsT0.Add(-10 * time.Minute))
	e.invoke(handlers.FnTrends, trendsBatch("0", 0, nil, prev...))
	e.clock.Set(trendsT0.Add(2 * time.Minute))
	e.invoke(handlers.FnTrends, trendsBatch("0", int64(len(prev)), nil, cur...))
	for m := 0; m <= 15; m++ {
		e.clock.Set(trendsT0.Add(time.Duration(m)*time.Minute + time.Second))
		e.tick(handlers.FnMaterializeTrends)
	}
	_, body := e.getTrending("?window=15m")
	var got trendingBody
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	// riser: (25-8)/max(8,10) = 1.7; newcomer: 12/10 = 1.2; steady: 1/30 < 0.5; tiny: 3 views < floor.
	want := []trends.RisingEntry{{ProductID: "riser", Views: 25, PreviousViews: 8, Growth: 1.7}, {ProductID: "newcomer", Views: 12, PreviousViews: 0, Growth: 1.2}}
	if diff := cmp.Diff(want, got.Rising); diff != "" {
		t.Errorf("rising (-want +got):\n%s", diff)
	}
	if got.AsOf != "2026-11-25T12:15:00Z" {
		t.Errorf("asOf %s", got.AsOf)
	}
	// `at` reads an earlier window: at 12:01:30 the window is 11:46-12:00, against an empty 11:31-11:45:
	// steady rose from nothing (30/10 = 3), riser stays under the floor.
	_, body = e.getTrending("?window=15m&at=2026-11-25T12:01:30Z")
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	wantAt := trendingBody{Window: "15m", AsOf: "2026-11-25T12:01:00Z",
		Top:    []trends.Entry{{ProductID: "steady", Views: 30}, {ProductID: "riser", Views: 8}, {ProductID: "tiny", Views: 1}},
		Rising: []trends.RisingEntry{{ProductID: "steady", Views: 30, PreviousViews: 0, Growth: 3}}}
	if diff := cmp.Diff(wantAt, got); diff != "" {
		t.Errorf("at 12:01:30 (-want +got):\n%s", diff)
	}
}

// Bad parameters are a 400 problem listing every invalid parameter; serving costs point reads only.
func TestGetTrendingParams(t *testing.T) {
	e := newTrendsEnv(t)
	e.clock.Set(trendsT0.Add(2 * time.Second))
	e.tick(handlers.FnMaterializeTrends)
	tests := []struct {
		query  string
		status string
		fields []string
	}{
		{"", "200", nil},
		{"?window=1h&limit=50&category=tools&at=2026-11-25T12:00:30Z", "200", nil},
		{"?window=2h", "400", []string{"window"}},
		{"?limit=0", "400", []string{"limit"}},
		{"?limit=51", "400", []string{"limit"}},
		{"?limit=x&window=1w&at=noon", "400", []string{"window", "limit", "at"}},
		{"?at=2026-11-25T13:00:00Z", "400", []string{"at"}},
		{"?at=2026-11-01T00:00:00Z", "400", []string{"at"}},
		{"?category=" + url.QueryEscape(strings.Repeat("c", 129)), "400", []string{"category"}},
		{"?window=15m&window=1h", "400", []string{"window"}},
		// Before the materializer has ever run for that time: empty lists, not an error.
		{"?at=2026-11-25T11:00:00Z", "200", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			e.snaps.reset()
			e.aggs.reset()
			e.tots.reset()
			out, body := e.getTrending(tt.query)
			if out.StatusCode != tt.status {
				t.Fatalf("status %s, want %s: %s", out.StatusCode, tt.status, body)
			}
			gets, _, lists := e.snaps.counts()
			ag, _, al := e.aggs.counts()
			tg, _, tl := e.tots.counts()
			if gets > 4 || lists+ag+al+tg+tl != 0 {
				t.Errorf("cost: %d snapshot reads, %d other operations", gets, lists+ag+al+tg+tl)
			}
			if tt.status == "200" {
				return
			}
			if ct := out.Headers["Content-Type"]; ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var p handlers.Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Field)
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s\n%s", diff, body)
			}
			if tt.status == "503" && out.Headers["Retry-After"] == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

// A store outage: the invocation fails before the last retry, the batch is parked on the last one,
// and the replay job counts it once.
func TestTrendsStoreDownRetriesThenParks(t *testing.T) {
	e := newTrendsEnv(t)
	b := func(retry int) []byte {
		return trendsBatch("2", 0, &protocol.RetryContext{RetryCount: retry, MaxRetryCount: 2},
			view("x1", "p-1", "tools", 5), view("x2", "p-1", "tools", 6), view("x3", "p-2", "tools", 7))
	}
	e.aggs.down = true
	if res := e.invoke(handlers.FnTrends, b(0)); res.Status != 500 {
		t.Fatalf("first try with the store down: %d, want 500 (the host retries)", res.Status)
	}
	if res := e.invoke(handlers.FnTrends, b(2)); res.Status != 200 {
		t.Fatalf("last retry: %d %s, want 200 (parked)", res.Status, res.Raw)
	}
	recs := e.deadLetters()
	if len(recs) != 3 || recs[0].Kind != deadletter.KindParked {
		t.Fatalf("dead letters: %+v, want 3 parked", recs)
	}
	e.aggs.down = false
	// A later batch of the same partition is counted first; then the replay.
	e.invoke(handlers.FnTrends, trendsBatch("2", 3, nil, view("x4", "p-1", "tools", 8)))
	for range 2 {
		if res := e.tick(handlers.FnReplayDeadLetters); res.Status != 200 {
			t.Fatalf("ReplayDeadLetters: %d %s", res.Status, res.Raw)
		}
	}
	a, _, err := e.aggs.Collection.Get(context.Background(), "agg|202611251200", "p2")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"p-1": 3, "p-2": 1}, a.Products); diff != "" {
		t.Errorf("counts after the replay (-want +got):\n%s", diff)
	}
	if recs := e.deadLetters(); len(recs) != 0 {
		t.Errorf("%d records left after the replay", len(recs))
	}
}

// The anomaly job through the host: steady traffic, then a spike; one event per episode once the
// minute is closed, with a deterministic id.
func TestDetectAnomaliesEndToEnd(t *testing.T) {
	e := newTrendsEnv(t)
	seq := int64(0)
	const spikeMinute = 30
	n := 0
	var publishedAt time.Time
	for m := 0; m < 45; m++ {
		count := 40 + (m*7)%5
		if m == spikeMinute {
			count = 400
		}
		var bodies [][]byte
		for i := range count {
			n++
			bodies = append(bodies, view(fmt.Sprintf("e%d", n), fmt.Sprintf("p-%d", i%7), "tools", m*60+i%55))
		}
		e.clock.Set(trendsT0.Add(time.Duration(m)*time.Minute + 56*time.Second))
		if res := e.invoke(handlers.FnTrends, trendsBatch("0", seq, nil, bodies...)); res.Status != 200 {
			t.Fatalf("Trends: %d %s", res.Status, res.Raw)
		}
		seq += int64(count)
		e.clock.Set(trendsT0.Add(time.Duration(m+1) * time.Minute))
		if res := e.tick(handlers.FnMaterializeTrends); res.Status != 200 {
			t.Fatalf("MaterializeTrends: %d %s", res.Status, res.Raw)
		}
		e.clock.Add(20 * time.Second)
		if res := e.tick(handlers.FnDetectAnomalies); res.Status != 200 {
			t.Fatalf("DetectAnomalies: %d %s", res.Status, res.Raw)
		}
		if m < spikeMinute+11 && len(e.pub.published) != 0 {
			t.Fatalf("minute %d: published %d events before the spike's minute closed", m, len(e.pub.published))
		}
		if publishedAt.IsZero() && len(e.pub.published) > 0 {
			publishedAt = e.clock.Now()
		}
	}
	// The closed-minute rule: the spike's minute (12:30) closes once the partition's watermark passes
	// 12:41 (its end plus the 10 minutes of allowed lateness); the next ticks merge it and judge it.
	delay := publishedAt.Sub(trendsT0.Add(spikeMinute * time.Minute))
	t.Logf("spike at 12:30 published at %s: %v after the spike minute began", publishedAt.Format("15:04:05"), delay)
	if delay > 14*time.Minute {
		t.Errorf("published %v after the spike, want within the lateness plus about two ticks", delay)
	}
	var site []event.Event
	for _, ev := range e.pub.published {
		if ev.Subject() == "/traffic/site" {
			site = append(site, ev)
		}
	}
	if len(site) != 1 {
		t.Fatalf("site events: %d, want 1 (all: %d)", len(site), len(e.pub.published))
	}
	ev := site[0]
	spike := trendsT0.Add(spikeMinute * time.Minute)
	if ev.Type() != "com.contoso.analytics.anomaly.detected" || ev.ID() != anomaly.EpisodeID("site", spike) {
		t.Errorf("event %s", ev)
	}
	var data anomaly.Data
	if err := ev.DataAs(&data); err != nil {
		t.Fatal(err)
	}
	if !data.Minute.Equal(spike) || data.Observed != 400 || data.Direction != "up" || data.Kind != "spike" {
		t.Errorf("data %+v", data)
	}
}

// TestTrendsFunctionJSON checks the bindings of the four functions against the names the code uses.
func TestTrendsFunctionJSON(t *testing.T) {
	type binding map[string]any
	read := func(name string) (bs []binding, retry map[string]any) {
		b, err := os.ReadFile("../functions/" + name + "/function.json")
		if err != nil {
			t.Fatal(err)
		}
		var fj struct {
			Bindings []binding      `json:"bindings"`
			Retry    map[string]any `json:"retry"`
		}
		if err := json.Unmarshal(b, &fj); err != nil {
			t.Fatal(err)
		}
		return fj.Bindings, fj.Retry
	}
	bs, retry := read(handlers.FnTrends)
	want := binding{"type": "eventHubTrigger", "direction": "in", "name": "events", "eventHubName": "clickstream",
		"consumerGroup": "trends", "connection": "EventHubsConnection", "cardinality": "many", "dataType": "string"}
	if diff := cmp.Diff([]binding{want}, bs); diff != "" {
		t.Errorf("Trends bindings (-want +got):\n%s", diff)
	}
	if n, _ := retry["maxRetryCount"].(float64); n < 1 {
		t.Errorf("Trends retry %v", retry)
	}
	bs, _ = read(handlers.FnGetTrending)
	if len(bs) != 2 || bs[0]["route"] != "trending" || bs[0]["authLevel"] != "function" || !cmp.Equal(bs[0]["methods"], []any{"get"}) || bs[1]["name"] != "res" {
		t.Errorf("GetTrending bindings %v", bs)
	}
	for _, fn := range []string{handlers.FnMaterializeTrends, handlers.FnDetectAnomalies} {
		bs, retry := read(fn)
		if len(bs) != 1 || bs[0]["type"] != "timerTrigger" || bs[0]["name"] != "timer" || bs[0]["runOnStartup"] != false {
			t.Errorf("%s bindings %v", fn, bs)
		}
		if s, _ := bs[0]["schedule"].(string); !strings.HasSuffix(s, " * * * * *") {
			t.Errorf("%s schedule %q, want every minute", fn, s)
		}
		if retry == nil {
			t.Errorf("%s has no retry policy", fn)
		}
	}
}

// A store with no snapshot yet (a new deployment) answers 200 with empty lists and says so.
func TestGetTrendingBeforeAnySnapshot(t *testing.T) {
	e := newTrendsEnv(t)
	out, body := e.getTrending("?window=15m")
	if out.StatusCode != "200" {
		t.Fatalf("status %s: %s", out.StatusCode, body)
	}
	var got struct {
		Top, Rising  []json.RawMessage
		Materialized *bool
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Top == nil || got.Rising == nil || len(got.Top)+len(got.Rising) != 0 || got.Materialized == nil || *got.Materialized {
		t.Fatalf("body %s, want empty top and rising lists and materialized false", body)
	}
}
