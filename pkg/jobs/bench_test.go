package jobs_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/clickgen"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/jobs"
)

// benchDay writes n events of the documented clickgen workload (pkg/clickgen Default: 10,000
// products, 40% anonymous, 0.5% malformed, 10% binary mode, 4 partitions, 115 events/s, i.e. 10
// million a day) as deflate Capture files with 5-minute windows (about 8,600 events per file, as a
// 10-million-event day has), and returns the directory.
func benchDay(b *testing.B, n int) capture.Dir {
	b.Helper()
	dir := capture.Dir{Root: filepath.Join(b.TempDir(), "capture")}
	cfg := clickgen.Default()
	cfg.Start = day.Add(8 * time.Hour)
	w, err := capture.NewDayWriter(dir, "contoso", "clickstream", 5*time.Minute, capture.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	g := clickgen.New(cfg)
	for range n {
		e := g.Next()
		if err := w.Write(e.Partition, capture.Event{Offset: "0", EnqueuedTime: e.Time, Properties: e.Properties, Body: e.Body}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkRollupDay measures captured events per second through the whole daily rollup on one
// goroutine (so per core): reading every Capture file (Avro, deflate), decoding clicks with the
// streaming decoder, per-file aggregates stored, the day merged, reports written and recommendations
// applied to the embedded store. Goal: at least 200,000 events/s per core.
func BenchmarkRollupDay(b *testing.B) {
	const n = 300_000
	src := benchDay(b, n)
	b.ReportAllocs()
	var cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		root := b.TempDir()
		db, err := embedded.Open(filepath.Join(root, "data"))
		if err != nil {
			b.Fatal(err)
		}
		days, _ := embedded.NewCollection[jobs.DayState](db, "jobState")
		files, _ := embedded.NewCollection[jobs.FileState](db, "jobState.files")
		recs, _ := embedded.NewCollection[jobs.Recommendation](db, "recommendations")
		job := &jobs.Rollup{Source: src, Container: "capture", Reports: jobs.Dir{Root: filepath.Join(root, "reports")},
			Stores: jobs.Stores{Days: days, Files: files, Recommendations: recs}, DeadLetters: deadlettertest.Local(b),
			Publisher: &fakePublisher{}, Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		b.StartTimer()
		c0 := cpuTime()
		res, err := job.RunDay(context.Background(), day, jobs.RunOptions{})
		cpu += cpuTime() - c0
		if err != nil {
			b.Fatal(err)
		}
		if res.Counts["events"] != n {
			b.Fatalf("%d events rolled up, want %d", res.Counts["events"], n)
		}
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// CPU time of the whole process (the rollup, the garbage collector, the embedded store's
	// flusher): events per CPU-second is events per second per core, whatever else the machine runs.
	b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "events/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
