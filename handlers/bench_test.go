package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/clickgen"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/embedded/boltref"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/recent"
)

// clickstreamEnvelopes renders the documented synthetic workload (clickgen.Default) as the host's
// RecentlyViewed envelopes: batches of batchSize per partition, in order.
func clickstreamEnvelopes(function, group string, events, batchSize int) (envs [][]byte, clicks int) {
	key := fmt.Sprint(function, group, events, batchSize)
	envCacheMu.Lock()
	defer envCacheMu.Unlock()
	if e, ok := envCache[key]; ok {
		return e, events
	}
	defer func() { envCache[key] = envs }()
	cfg := clickgen.Default()
	g := clickgen.New(cfg)
	per := make([][]hostsim.Event, cfg.Partitions)
	for i := range events {
		ev := g.Next()
		per[ev.Partition] = append(per[ev.Partition], hostsim.Event{Body: ev.Body, Properties: ev.Properties,
			SequenceNumber: int64(i), Offset: int64(i) * 512, EnqueuedTime: ev.Time})
	}
	for p, evs := range per {
		pc := protocol.PartitionContext{EventHubName: "clickstream", ConsumerGroup: group, PartitionID: strconv.Itoa(p)}
		for i := 0; i < len(evs); i += batchSize {
			envs = append(envs, hostsim.EventHubBatch(function, "events", pc, evs[i:min(i+batchSize, len(evs))], &protocol.RetryContext{MaxRetryCount: 5}))
		}
	}
	return envs, events
}

var (
	envCacheMu sync.Mutex
	envCache   = map[string][][]byte{}
)

// countingStore counts writes, to report store writes per 1,000 clicks.
type countingStore struct {
	recent.Store
	writes int
}

func (c *countingStore) Put(ctx context.Context, pk, id string, v recent.List, o docstore.PutOptions) (docstore.ETag, error) {
	c.writes++
	return c.Store.Put(ctx, pk, id, v, o)
}

// BenchmarkRecentlyViewed measures POST /RecentlyViewed end to end inside the process: envelope
// decode, click decode, per-viewer merge and the embedded store, committed (fsynced) before every
// answer as cmd/handler wires it, on the documented workload in batches of 256. Run per core with: go test -run '^$' -bench
// RecentlyViewed -cpu 1 ./handlers/
func BenchmarkRecentlyViewed(b *testing.B) {
	envs, _ := clickstreamEnvelopes("RecentlyViewed", "recently-viewed", 200_000, 256)
	var bytesTotal int
	for _, e := range envs {
		bytesTotal += len(e)
	}
	db, err := embedded.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	coll, _ := embedded.NewCollection[recent.List](db, "recentlyViewed")
	dead, _ := embedded.NewCollection[deadletter.Record](db, "deadletter")
	store := &countingStore{Store: coll}
	h := handlers.New(handlers.Deps{
		Log:         slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Recent:      &recent.Service{Store: store, TTL: 30 * 24 * time.Hour, Concurrency: 1, MaxAttempts: 5},
		DeadLetters: &deadletter.Docs{C: dead}, // as cmd/handler wires the embedded default
		Commit:      func(context.Context) error { return db.Commit() },
	})
	b.SetBytes(int64(bytesTotal / len(envs)))
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	cpu0 := processCPU()
	for i := 0; b.Loop(); i++ {
		env := envs[i%len(envs)]
		r := httptest.NewRequest(http.MethodPost, "/RecentlyViewed", bytes.NewReader(env))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		events += 256
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	// On a shared virtual machine wall time includes time the vCPU was not running; the process's
	// CPU time (handler, flusher and garbage collector) is the per-core cost.
	b.ReportMetric(float64(events)/(processCPU()-cpu0).Seconds(), "events/cpu-s")
}

// processCPU is the user and system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecentlyViewedWrites reports store writes per 1,000 clicks for one pass over the
// documented workload (the naive design writes once per click: 1,000).
func BenchmarkRecentlyViewedWrites(b *testing.B) {
	envs, clicks := clickstreamEnvelopes("RecentlyViewed", "recently-viewed", 100_000, 256)
	for b.Loop() {
		db, _ := embedded.Open(b.TempDir())
		coll, _ := embedded.NewCollection[recent.List](db, "recentlyViewed")
		store := &countingStore{Store: coll}
		h := handlers.New(handlers.Deps{
			Log:         slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Recent:      &recent.Service{Store: store, TTL: time.Hour, Concurrency: 1, MaxAttempts: 5},
			DeadLetters: deadlettertest.Local(b),
		})
		for _, env := range envs {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/RecentlyViewed", bytes.NewReader(env)))
		}
		db.Close()
		b.ReportMetric(float64(store.writes)*1000/float64(clicks), "writes/1000clicks")
	}
}

// BenchmarkRecentlyViewedStores runs POST /RecentlyViewed on the same envelopes with the embedded
// store (pkg/embedded: a log, one write and fdatasync per invocation) and with the same contract on
// bbolt (pkg/embedded/boltref: one transaction per invocation), interleaved per round, and reports
// CPU per event of each and their ratio. Run with:
// go test -run '^$' -bench RecentlyViewedStores -cpu 1 -benchtime 10x ./handlers/
func BenchmarkRecentlyViewedStores(b *testing.B) {
	envs, _ := clickstreamEnvelopes("RecentlyViewed", "recently-viewed", 200_000, 256)
	type setup struct {
		name string
		h    http.Handler
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	db, err := embedded.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	coll, _ := embedded.NewCollection[recent.List](db, "recentlyViewed")
	dead, _ := embedded.NewCollection[deadletter.Record](db, "deadletter")
	ref, err := boltref.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer ref.Close()
	refColl, _ := boltref.NewCollection[recent.List](ref, "recentlyViewed")
	refDead, _ := boltref.NewCollection[deadletter.Record](ref, "deadletter")
	setups := []setup{
		{"log", handlers.New(handlers.Deps{Log: log, DeadLetters: &deadletter.Docs{C: dead},
			Recent: &recent.Service{Store: coll, TTL: 30 * 24 * time.Hour, Concurrency: 1, MaxAttempts: 5},
			Commit: func(context.Context) error { return db.Commit() }})},
		{"bbolt", handlers.New(handlers.Deps{Log: log, DeadLetters: &deadletter.Docs{C: refDead},
			Recent: &recent.Service{Store: refColl, TTL: 30 * 24 * time.Hour, Concurrency: 1, MaxAttempts: 5},
			Commit: func(context.Context) error { return ref.Commit() }})},
	}
	cpu := make([]time.Duration, len(setups))
	events := 0
	for b.Loop() {
		for i, s := range setups { // one pass over the workload each, in turn
			c0 := processCPU()
			for _, env := range envs {
				w := httptest.NewRecorder()
				s.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/RecentlyViewed", bytes.NewReader(env)))
				if w.Code != 200 {
					b.Fatalf("%s: status %d: %s", s.name, w.Code, w.Body)
				}
			}
			cpu[i] += processCPU() - c0
		}
		events += len(envs) * 256
	}
	for i, s := range setups {
		b.ReportMetric(float64(cpu[i].Nanoseconds())/float64(events), s.name+"-cpu-ns/event")
	}
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "bbolt/log-cpu")
	b.ReportMetric(float64(db.SizeOnDisk())/(1<<20), "log-MiB")
	b.ReportMetric(float64(ref.SizeOnDisk())/(1<<20), "bbolt-MiB")
}
