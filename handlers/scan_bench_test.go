package handlers_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/recent"
	"github.com/contoso/eventpipeline/pkg/trends"
)

// scanClicks is the reference the hot path is measured against: a fastjson scan of the same envelope
// bytes that reads what a click consumer must at least read: the envelope, the events array, and each
// event's type, time, viewer and product (from the structured body, or for binary-mode events from the
// application properties). It validates nothing beyond fastjson's parse, decides nothing, stores
// nothing: the product doing all of that at a given fraction of this speed is the figure.
func scanClicks(env []byte, p *scanParsers) (clicks int, err error) {
	v, err := p.env.ParseBytes(env)
	if err != nil {
		return 0, err
	}
	arr, err := p.arr.ParseBytes(v.GetStringBytes("Data", "events"))
	if err != nil {
		return 0, err
	}
	bodies, err := arr.Array()
	if err != nil {
		return 0, err
	}
	var props []*fastjson.Value
	for i, b := range bodies {
		body, err := p.body.ParseBytes(b.GetStringBytes())
		if err != nil {
			continue // a malformed body: the product dead-letters it
		}
		typ, at := body.GetStringBytes("type"), body.GetStringBytes("time")
		data := body.Get("data")
		if body.Get("specversion") == nil { // binary mode: attributes in the properties
			if props == nil {
				pv, err := p.props.ParseBytes(v.GetStringBytes("Metadata", "PropertiesArray"))
				if err != nil {
					return 0, err
				}
				props, _ = pv.Array()
			}
			if i < len(props) {
				typ, at = props[i].GetStringBytes("cloudEvents:type"), props[i].GetStringBytes("cloudEvents:time")
			}
			data = body
		}
		viewer := data.GetStringBytes("userId")
		if len(viewer) == 0 {
			viewer = data.GetStringBytes("sessionId")
		}
		product := data.GetStringBytes("productId")
		if len(typ) > 0 && len(at) >= 0 && len(viewer) > 0 && len(product) > 0 {
			clicks++
		}
	}
	return clicks, nil
}

type scanParsers struct{ env, arr, body, props fastjson.Parser }

// BenchmarkHotPathVsScan runs POST /RecentlyViewed and POST /Trends (full functions, embedded store
// committed before every answer, as cmd/handler wires them) and the fastjson scan (scanClicks) on the
// same envelopes, interleaved over 10 rounds, and reports the CPU time per event of each, the ratio
// (scan CPU / function CPU: the fraction of the scan's speed the function reaches), and the function's
// allocations per event. Run per core with:
// go test -run '^$' -bench HotPathVsScan -cpu 1 -benchtime 1x ./handlers/
func BenchmarkHotPathVsScan(b *testing.B) {
	for _, size := range []int{256, 100} {
		for _, fn := range []string{"RecentlyViewed", "Trends"} {
			b.Run(fn+"/batch="+itoa(size), func(b *testing.B) { hotPathVsScan(b, fn, size) })
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func hotPathVsScan(b *testing.B, fn string, size int) {
	group := map[string]string{"RecentlyViewed": "recently-viewed", "Trends": "trends"}[fn]
	envs, _ := clickstreamEnvelopes(fn, group, 100_000, size)
	perRound := 0
	for _, e := range envs {
		perRound += countEvents(e)
	}
	events := 0
	var h http.Handler
	newHandler := func() (http.Handler, func()) {
		db, err := embedded.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		dead, _ := deadletter.Open(db, handlers.Functions())
		d := handlers.Deps{Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), DeadLetters: dead,
			Commit: func(context.Context) error { return db.Commit() },
			Now:    func() time.Time { return time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC) }}
		coll, _ := embedded.NewCollection[recent.List](db, "recentlyViewed")
		d.Recent = &recent.Service{Store: coll, TTL: 30 * 24 * time.Hour, Concurrency: 1, MaxAttempts: 5}
		if fn == "Trends" {
			d.Trends = newEmbeddedTrends(b, db, d.Now)
		}
		return handlers.New(d), func() { db.Close() }
	}
	var fnCPU, scanCPU time.Duration
	var allocs, bytesAlloc uint64
	var ms0, ms1 runtime.MemStats
	var p scanParsers
	const rounds = 10
	for b.Loop() {
		for range rounds {
			var closeH func()
			h, closeH = newHandler() // a fresh store each round: every round does the same work
			runtime.ReadMemStats(&ms0)
			c0 := processCPU()
			for _, env := range envs {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/"+fn, bytes.NewReader(env)))
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			fnCPU += processCPU() - c0
			runtime.ReadMemStats(&ms1)
			allocs += ms1.Mallocs - ms0.Mallocs
			bytesAlloc += ms1.TotalAlloc - ms0.TotalAlloc
			closeH()
			c0 = processCPU()
			for _, env := range envs {
				if _, err := scanClicks(env, &p); err != nil {
					b.Fatal(err)
				}
			}
			scanCPU += processCPU() - c0
			events += perRound
		}
	}
	b.ReportMetric(float64(scanCPU)/float64(fnCPU), "function/scan-speed")
	b.ReportMetric(float64(fnCPU.Nanoseconds())/float64(events), "function-cpu-ns/event")
	b.ReportMetric(float64(scanCPU.Nanoseconds())/float64(events), "scan-cpu-ns/event")
	b.ReportMetric(float64(allocs)/float64(events), "function-allocs/event")
	b.ReportMetric(float64(bytesAlloc)/float64(events), "function-B/event")
}

func countEvents(env []byte) int {
	var p fastjson.Parser
	v, _ := p.ParseBytes(env)
	var q fastjson.Parser
	a, _ := q.ParseBytes(v.GetStringBytes("Data", "events"))
	arr, _ := a.Array()
	return len(arr)
}

func newEmbeddedTrends(b *testing.B, db *embedded.DB, now func() time.Time) *trends.Service {
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	aggs, err := embedded.NewCollection[trends.Aggregate](db, "trendAggregates")
	must(err)
	prog, err := embedded.NewCollection[trends.Progress](db, "trendAggregates.progress")
	must(err)
	tots, err := embedded.NewCollection[trends.Totals](db, "trendSnapshots.totals")
	must(err)
	snaps, err := embedded.NewCollection[trends.Snapshot](db, "trendSnapshots")
	must(err)
	state, err := embedded.NewCollection[trends.MaterializerState](db, "trendSnapshots.state")
	must(err)
	return &trends.Service{Stores: trends.Stores{Aggregates: aggs, Progress: prog, Totals: tots, Snapshots: snaps, State: state}, Now: now}
}
