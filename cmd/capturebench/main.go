// Command capturebench measures the daily Capture rollup on a generated day: it writes N clicks of the
// documented synthetic workload (pkg/clickgen Default: 10,000 products, 50,000 shoppers, 40%
// anonymous, 0.5% malformed, 1% other types, 10% binary mode, 4 partitions) as Event Hubs Capture
// Avro files (deflate, 5-minute windows, Capture's layout) under a directory, then runs the rollup of
// that day exactly as the timer does, on the embedded stores, and reports events per second, events
// per CPU-second (per core) and the peak memory.
//
// Usage:
//
//	go run ./cmd/capturebench                          # a day of 10 million clicks (minutes)
//	go run ./cmd/capturebench -events 1000000          # scaled down
//	go run ./cmd/capturebench -dir /tmp/day -keep      # keep the files and reports
//	go run ./cmd/capturebench -phase rollup -dir /tmp/day   # roll up files written before
//	go run ./cmd/capturebench -phase gen -dir .data -events 200000   # Capture files for the local run
//
// The rollup phase keeps its state and reports under <dir>/capturebench (removed first), so a
// LOCAL_DATA_DIR given as -dir keeps its own.
// With -phase all (the default) the rollup runs in a child process of its own, so its peak RSS is the
// rollup's and not the generator's.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/clickgen"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/jobs"
)

// day is the generated UTC day (-day).
var day = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "capturebench:", err)
		os.Exit(1)
	}
}

// Result is what the rollup phase reports (JSON on stdout with -json).
type Result struct {
	Events        int64   `json:"events"`
	Files         int     `json:"files"`
	WallSeconds   float64 `json:"wallSeconds"`
	CPUSeconds    float64 `json:"cpuSeconds"`
	EventsPerSec  float64 `json:"eventsPerSecond"`
	EventsPerCPUs float64 `json:"eventsPerCpuSecond"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	PeakRSSMiB    float64 `json:"peakRssMiB"`
	PeakHeapMiB   float64 `json:"peakHeapInUseMiB"`
	PeakSysMiB    float64 `json:"peakSysMiB"`
	AllocGiB      float64 `json:"totalAllocGiB"`
	Products      int64   `json:"products"`
	Recommended   int64   `json:"recommendationsUpdated"`
}

func run(args []string) error {
	fs := flag.NewFlagSet("capturebench", flag.ContinueOnError)
	events := fs.Int("events", 10_000_000, "clicks in the day")
	dir := fs.String("dir", "", "working directory (default: a temporary one, removed at the end)")
	keep := fs.Bool("keep", false, "keep the working directory")
	phase := fs.String("phase", "all", "all | gen | rollup")
	codec := fs.String("codec", "deflate", "Avro codec of the written files: deflate | null")
	window := fs.Duration("window", 5*time.Minute, "capture window (infra/ sets 300 s)")
	asJSON := fs.Bool("json", false, "print the rollup result as JSON")
	dayFlag := fs.String("day", day.Format(jobs.DayLayout), "the UTC day to generate and roll up")
	cpuProfile := fs.String("cpuprofile", "", "write the rollup phase's CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := jobs.ParseDay(*dayFlag)
	if err != nil {
		return err
	}
	day = d
	if *dir == "" {
		d, err := os.MkdirTemp("", "capturebench-")
		if err != nil {
			return err
		}
		*dir = d
		if !*keep {
			defer os.RemoveAll(d)
		}
	}
	switch *phase {
	case "gen":
		return generate(*dir, *events, capture.Codec(*codec), *window)
	case "rollup":
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		res, err := rollup(*dir)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(os.Stdout).Encode(res)
		}
		printResult(res)
		return nil
	case "all":
		if err := generate(*dir, *events, capture.Codec(*codec), *window); err != nil {
			return err
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command(self, "-phase", "rollup", "-dir", *dir, "-day", *dayFlag, "-json", "-cpuprofile", *cpuProfile)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("rollup phase: %w", err)
		}
		var res Result
		if err := json.Unmarshal(out, &res); err != nil {
			return fmt.Errorf("rollup phase output %q: %w", out, err)
		}
		if *asJSON {
			return json.NewEncoder(os.Stdout).Encode(res)
		}
		printResult(res)
		return nil
	}
	return fmt.Errorf("-phase %q: want all, gen or rollup", *phase)
}

func generate(dir string, n int, codec capture.Codec, window time.Duration) error {
	start := time.Now()
	cfg := clickgen.Default()
	cfg.Start = day
	cfg.Rate = time.Duration(float64(24*time.Hour) / float64(n) * 0.999)
	w, err := capture.NewDayWriter(capture.Dir{Root: filepath.Join(dir, "capture")}, "contoso", "clickstream", window,
		capture.WriterOptions{Codec: codec})
	if err != nil {
		return err
	}
	g := clickgen.New(cfg)
	for range n {
		e := g.Next()
		if err := w.Write(e.Partition, capture.Event{EnqueuedTime: e.Time.Add(30 * time.Millisecond), Properties: e.Properties, Body: e.Body}); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "capturebench: wrote %d events in %d Capture files (%s, %s windows) under %s in %s\n",
		w.Events(), w.Files(), codec, window, filepath.Join(dir, "capture"), time.Since(start).Round(time.Millisecond))
	return nil
}

type discard struct{ n atomic.Int64 }

func (d *discard) Publish(ctx context.Context, evs []event.Event, lastAttempt bool) error {
	d.n.Add(int64(len(evs)))
	return nil
}

func rollup(dir string) (Result, error) {
	var res Result
	// A fresh state of its own (dir/capturebench), so that every file is read and a LOCAL_DATA_DIR
	// given as -dir keeps its own stores and reports.
	state := filepath.Join(dir, "capturebench")
	if err := os.RemoveAll(state); err != nil {
		return res, err
	}
	db, err := embedded.Open(filepath.Join(state, "data"))
	if err != nil {
		return res, err
	}
	defer db.Close()
	days, err := embedded.NewCollection[jobs.DayState](db, "jobState")
	if err != nil {
		return res, err
	}
	files, err := embedded.NewCollection[jobs.FileState](db, "jobState.files")
	if err != nil {
		return res, err
	}
	recs, err := embedded.NewCollection[jobs.Recommendation](db, "recommendations")
	if err != nil {
		return res, err
	}
	dead, err := deadletter.Open(db, nil)
	if err != nil {
		return res, err
	}
	job := &jobs.Rollup{Source: capture.Dir{Root: filepath.Join(dir, "capture")}, Container: "capture",
		Reports: jobs.Dir{Root: filepath.Join(state, "reports")}, Stores: jobs.Stores{Days: days, Files: files, Recommendations: recs},
		DeadLetters: dead, Publisher: &discard{},
		Now: func() time.Time { return day.AddDate(0, 0, 1).Add(30 * time.Minute) }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	var peakHeap, peakSys atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			if ms.Sys > peakSys.Load() {
				peakSys.Store(ms.Sys)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	start := time.Now()
	r, err := job.RunDay(context.Background(), day, jobs.RunOptions{By: "capturebench"})
	wall := time.Since(start)
	cpu := cpuTime() - cpu0
	close(stop)
	wg.Wait()
	if err != nil {
		return res, err
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	res = Result{Events: r.Counts["events"], Files: r.Files, WallSeconds: wall.Seconds(), CPUSeconds: cpu.Seconds(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), PeakRSSMiB: float64(ru.Maxrss) / 1024, PeakHeapMiB: float64(peakHeap.Load()) / (1 << 20),
		PeakSysMiB: float64(peakSys.Load()) / (1 << 20), AllocGiB: float64(after.TotalAlloc-before.TotalAlloc) / (1 << 30),
		Products: r.Counts["products"], Recommended: int64(r.Recommendations.Updated)}
	res.EventsPerSec = float64(res.Events) / res.WallSeconds
	res.EventsPerCPUs = float64(res.Events) / res.CPUSeconds
	if res.Events == 0 {
		return res, errors.New("no events rolled up (no Capture files under -dir?)")
	}
	return res, nil
}

func printResult(r Result) {
	fmt.Printf("rolled up %d events in %d files, %d products, %d recommendation documents\n", r.Events, r.Files, r.Products, r.Recommended)
	fmt.Printf("wall %.1f s, CPU %.1f s (GOMAXPROCS %d): %.0f events/s, %.0f events per CPU-second (per core)\n",
		r.WallSeconds, r.CPUSeconds, r.GOMAXPROCS, r.EventsPerSec, r.EventsPerCPUs)
	fmt.Printf("peak RSS %.0f MiB, peak heap in use %.0f MiB, peak Go Sys %.0f MiB, allocated %.2f GiB\n",
		r.PeakRSSMiB, r.PeakHeapMiB, r.PeakSysMiB, r.AllocGiB)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
