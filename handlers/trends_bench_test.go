package handlers_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/clickgen"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

// trendsWorkload renders the documented synthetic clickstream (clickgen.Default: 10,000 products in
// 12 categories, Zipf popularity, 0.5% malformed, 1% other types, 10% binary mode, 4 partitions,
// ~115 clicks/s) as the host's Trends envelopes: per partition, consecutive sequence numbers (as
// Event Hubs numbers them), each event enqueued 200 ms after its event time, in batches of
// batchSize. It returns the envelopes in delivery order (partitions interleaved) and the instant
// after the last event.
func trendsWorkload(events, batchSize int) (envs [][]byte, end time.Time) {
	key := fmt.Sprint(events, batchSize)
	trendsEnvMu.Lock()
	defer trendsEnvMu.Unlock()
	if w, ok := trendsEnvCache[key]; ok {
		return w.envs, w.end
	}
	cfg := clickgen.Default()
	g := clickgen.New(cfg)
	per := make([][]hostsim.Event, cfg.Partitions)
	for range events {
		ev := g.Next()
		seq := int64(len(per[ev.Partition]))
		per[ev.Partition] = append(per[ev.Partition], hostsim.Event{Body: ev.Body, Properties: ev.Properties,
			SequenceNumber: seq, Offset: seq * 512, EnqueuedTime: ev.Time.Add(200 * time.Millisecond)})
		end = ev.Time
	}
	batches := make([][][]byte, cfg.Partitions)
	for p, evs := range per {
		pc := protocol.PartitionContext{EventHubName: "clickstream", ConsumerGroup: "trends", PartitionID: strconv.Itoa(p)}
		for i := 0; i < len(evs); i += batchSize {
			batches[p] = append(batches[p], hostsim.EventHubBatch(handlers.FnTrends, "events", pc, evs[i:min(i+batchSize, len(evs))], &protocol.RetryContext{MaxRetryCount: 5}))
		}
	}
	for i := 0; ; i++ {
		more := false
		for p := range batches {
			if i < len(batches[p]) {
				envs = append(envs, batches[p][i])
				more = true
			}
		}
		if !more {
			break
		}
	}
	trendsEnvCache[key] = trendsEnvEntry{envs, end}
	return envs, end
}

type trendsEnvEntry struct {
	envs [][]byte
	end  time.Time
}

var (
	trendsEnvMu    sync.Mutex
	trendsEnvCache = map[string]trendsEnvEntry{}
)

// BenchmarkTrends measures POST /Trends end to end inside the process: the host's envelope, click
// decoding, per-partition/minute counting and the embedded stores (with their log flusher), on the
// documented workload in batches of 256. Every envelope is applied for the first time: when the
// pool is used up the stores are replaced (outside the timer). Per core:
//
//	go test -run '^$' -bench 'BenchmarkTrends$' -cpu 1 ./handlers/
func BenchmarkTrends(b *testing.B) {
	envs, end := trendsWorkload(100_000, 256)
	var size int
	for _, e := range envs {
		size += len(e)
	}
	var h http.Handler
	reset := func() {
		e := newTrendsEnv(b)
		e.clock.Set(end.Add(time.Minute))
		d := e.deps
		d.DeadLetters = deadlettertest.Local(b)
		d.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
		h = handlers.New(d)
	}
	reset()
	b.SetBytes(int64(size / len(envs)))
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for i := 0; i < b.N; i++ {
		if i > 0 && i%len(envs) == 0 {
			b.StopTimer()
			reset()
			b.StartTimer()
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/Trends", bytes.NewReader(envs[i%len(envs)])))
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		events += 256
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkTrendsWrites reports store writes (aggregates + partition progress) per 1,000 clicks for
// one pass over the documented workload, by batch size. A naive counter writes once per click
// (1,000); "one write per aggregate per batch" writes (minutes touched + 1) per batch.
func BenchmarkTrendsWrites(b *testing.B) {
	for _, size := range []int{256, 64, 16} {
		b.Run("batch="+strconv.Itoa(size), func(b *testing.B) {
			envs, end := trendsWorkload(100_000, size)
			for b.Loop() {
				e := newTrendsEnv(b)
				e.clock.Set(end.Add(time.Minute))
				for _, env := range envs {
					w := httptest.NewRecorder()
					e.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/Trends", bytes.NewReader(env)))
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
				_, aggWrites, _ := e.aggs.counts()
				_, progWrites, _ := e.prog.counts()
				b.ReportMetric(float64(aggWrites+progWrites)*1000/100_000, "writes/1000clicks")
				b.ReportMetric(float64(aggWrites)*1000/100_000, "aggregateWrites/1000clicks")
			}
		})
	}
}

// trendingFixture counts the whole workload (about 14.5 minutes of traffic) and runs the
// materializer once a minute over it, as the timer would.
func trendingFixture(b *testing.B) *trendsEnv {
	envs, end := trendsWorkload(100_000, 256)
	e := newTrendsEnv(b)
	start := end.Add(-15 * time.Minute).Truncate(time.Minute)
	e.clock.Set(start)
	e.tick(handlers.FnMaterializeTrends)
	for _, env := range envs {
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/Trends", bytes.NewReader(env)))
	}
	for t := start.Add(time.Minute); !t.After(end.Add(time.Minute)); t = t.Add(time.Minute) {
		e.clock.Set(t.Add(time.Second))
		if res := e.tick(handlers.FnMaterializeTrends); res.Status != 200 {
			b.Fatalf("MaterializeTrends: %d %s", res.Status, res.Raw)
		}
	}
	return e
}

// BenchmarkGetTrending measures one GetTrending request on the documented workload, through the
// host's JSON envelope (POST /GetTrending) and forwarded (GET /api/trending), and reports the store
// reads per request.
func BenchmarkGetTrending(b *testing.B) {
	e := trendingFixture(b)
	queries := []string{"?window=15m", "?window=1h&limit=50", "?window=24h&category=tools", "?window=1h&category=no-such-category"}
	b.Run("forwarded", func(b *testing.B) {
		e.snaps.reset()
		i := 0
		for b.Loop() {
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/trending"+queries[i%len(queries)], nil))
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
			i++
		}
		gets, _, lists := e.snaps.counts()
		b.ReportMetric(float64(gets+lists)/float64(i), "reads/request")
	})
	b.Run("envelope", func(b *testing.B) {
		envs := make([][]byte, len(queries))
		for i, q := range queries {
			r := httptest.NewRequest(http.MethodGet, "https://contoso.azurewebsites.net/api/trending"+q, nil)
			env, err := hostsim.HTTP(handlers.FnGetTrending, "req", r, nil, hostsim.FunctionKey("default"))
			if err != nil {
				b.Fatal(err)
			}
			envs[i] = env
		}
		e.snaps.reset()
		i := 0
		for b.Loop() {
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/GetTrending", bytes.NewReader(envs[i%len(envs)])))
			if w.Code != 200 || !bytes.Contains(w.Body.Bytes(), []byte(`"statusCode":"200"`)) {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
			i++
		}
		gets, _, lists := e.snaps.counts()
		b.ReportMetric(float64(gets+lists)/float64(i), "reads/request")
	})
}

// BenchmarkMaterializeTrends measures one materializer tick on the documented workload (about 10,000
// products, 12 categories): reading the partitions' progress, merging the open minutes, summing the
// windows and writing 39 snapshot documents (3 windows x (site + 12 categories)). Each iteration
// re-runs the tick of the same minute after resetting the cursor, so the work is the same every time.
func BenchmarkMaterializeTrends(b *testing.B) {
	e := trendingFixture(b)
	ctx := b.Context()
	// The next minute's tick: it merges the open minutes (unchanged: no new clicks arrived since the
	// last tick, so no totals are rewritten) and writes the snapshots ending at the new minute.
	e.clock.Add(time.Minute)
	st, _, err := e.state.Collection.Get(ctx, "state", "materializer")
	if err != nil {
		b.Fatal(err)
	}
	var reads, writes int
	for b.Loop() {
		b.StopTimer()
		if _, err := e.state.Collection.Put(ctx, "state", "materializer", st, docstore.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		ms, err := e.deps.Trends.Materialize(ctx)
		if err != nil {
			b.Fatal(err)
		}
		reads, writes = ms.Reads, ms.Writes
	}
	b.ReportMetric(float64(reads), "reads/tick")
	b.ReportMetric(float64(writes), "writes/tick")
}
