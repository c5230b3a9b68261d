// Command simulate is the local run (`make run`): it starts the custom handler the way the Azure
// Functions host does (FUNCTIONS_CUSTOMHANDLER_PORT, readiness polling of GET /), drives it with a
// realistic synthetic clickstream as the Event Hubs trigger would (one ordered stream of batches per
// partition, partitions in parallel, at-least-once with some redelivered batches), and then shows what
// the site would show, by calling the HTTP functions through the host's JSON envelope.
//
// Everything runs on the embedded defaults under -data (no Azure account needed).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/contoso/eventpipeline/pkg/clickgen"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "simulate:", err)
		os.Exit(1)
	}
}

type options struct {
	handler   string
	data      string
	clicks    int
	batch     int
	redeliver float64
	keep      bool
	captured  int
}

func run() error {
	var o options
	flag.StringVar(&o.handler, "handler", "bin/handler", "custom handler executable")
	flag.StringVar(&o.data, "data", ".data/run", "LOCAL_DATA_DIR for the run")
	flag.IntVar(&o.clicks, "clicks", 200_000, "clickstream events to send")
	flag.IntVar(&o.batch, "batch", 256, "events per invocation (host.json maxEventBatchSize)")
	flag.Float64Var(&o.redeliver, "redeliver", 0.02, "share of batches delivered twice (at-least-once)")
	flag.BoolVar(&o.keep, "keep", false, "keep the data of earlier runs")
	flag.IntVar(&o.captured, "captured", 200_000, "clicks of yesterday written as Capture files for the batch jobs")
	flag.Parse()

	if !o.keep {
		if err := os.RemoveAll(o.data); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.data, 0o755); err != nil {
		return err
	}
	h, err := startHandler(o)
	if err != nil {
		return err
	}
	defer h.stop()
	host := &hostsim.Client{BaseURL: h.url, HTTP: &http.Client{Timeout: 5 * time.Minute}}
	ctx := context.Background()

	cfg := clickgen.Default()
	// The clicks end now, so that the trends windows (which end at the current minute) show them.
	cfg.Start = time.Now().UTC().Add(-time.Duration(o.clicks) * cfg.Rate)
	fmt.Printf("\n== clickstream: %d events over %d partitions, batches of %d (%.0f%% anonymous, %.1f%% malformed, %.0f%% binary mode)\n",
		o.clicks, cfg.Partitions, o.batch, cfg.AnonymousRate*100, cfg.MalformedRate*100, cfg.BinaryRate*100)
	st, err := sendClickstream(ctx, host, cfg, o)
	if err != nil {
		return err
	}
	fmt.Printf("   delivered %d events (%d to each consumer group: recently-viewed, trends) in %d invocations (%d batches twice) in %v: %.0f events/s end to end\n",
		st.events, o.clicks, st.invocations, st.redelivered, st.elapsed.Round(time.Millisecond), float64(st.events)/st.elapsed.Seconds())

	fmt.Printf("\n== what the site shows: GET /api/users/{id}/recently-viewed (through the host's envelope)\n")
	for _, v := range st.topViewers(3, true) {
		if err := showRecent(ctx, host, v); err != nil {
			return err
		}
	}
	for _, v := range st.topViewers(1, false) {
		if err := showRecent(ctx, host, v); err != nil {
			return err
		}
	}
	if err := showTrending(ctx, host); err != nil {
		return err
	}
	if err := showProductChanges(ctx, host, o.data, h.partner); err != nil {
		return err
	}
	if err := showFeedback(ctx, host, o.data); err != nil {
		return err
	}
	if err := showBatchJobs(ctx, host, o.data, o.captured); err != nil {
		return err
	}
	// The embedded dead-letter store is a document log the handler owns: read it once it stopped.
	h.stop()
	fmt.Printf("\n== dead-letter store (embedded: %s)\n", filepath.Join(o.data, "docs", "deadletter.jsonl"))
	if err := showDeadLetters(ctx, o); err != nil {
		return err
	}
	fmt.Printf("\nhandler log: %s\n", h.logPath)
	return nil
}

type handlerProc struct {
	partner *partner
	cmd     *exec.Cmd
	url     string
	logPath string
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startHandler starts the executable as the host does and polls GET / every 25 ms until it answers.
func startHandler(o options) (*handlerProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.data, "handler.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(o.data)
	p := newPartner()
	cmd := exec.Command(o.handler)
	cmd.Env = append(os.Environ(), "FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port), "LOCAL_DATA_DIR="+abs,
		"LOCAL_PARTNER_WEBHOOKS="+p.srv.URL+"/events",
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID=simulate", "FUNCTIONS_APP_ROOT_PATH="+filepath.Dir(o.handler))
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (run `make build` first): %w", o.handler, err)
	}
	h := &handlerProc{partner: p, cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), logPath: logPath}
	for {
		res, err := http.Get(h.url + "/")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Since(start) > 30*time.Second {
			h.stop()
			return nil, fmt.Errorf("handler not ready after 30s (see %s)", logPath)
		}
		time.Sleep(25 * time.Millisecond)
	}
	fmt.Printf("== handler %s started, ready on %s in %v\n", o.handler, h.url, time.Since(start).Round(time.Millisecond))
	return h, nil
}

func (h *handlerProc) stop() {
	if h.cmd.Process == nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = h.cmd.Process.Kill()
	}
}

type sendStats struct {
	events, invocations, redelivered int
	elapsed                          time.Duration
	viewers                          map[string]int
	anonymous                        map[string]bool
}

func (s *sendStats) topViewers(n int, signedIn bool) []string {
	var vs []string
	for v := range s.viewers {
		if s.anonymous[v] != signedIn {
			vs = append(vs, v)
		}
	}
	sort.Slice(vs, func(i, j int) bool {
		if s.viewers[vs[i]] != s.viewers[vs[j]] {
			return s.viewers[vs[i]] > s.viewers[vs[j]]
		}
		return vs[i] < vs[j]
	})
	return vs[:min(n, len(vs))]
}

// sendClickstream generates the events, splits them per partition (partition key = viewer) and sends
// each partition's batches in order, partitions concurrently, like the Event Hubs trigger.
func sendClickstream(ctx context.Context, host *hostsim.Client, cfg clickgen.Config, o options) (*sendStats, error) {
	g := clickgen.New(cfg)
	perPartition := make([][]hostsim.Event, cfg.Partitions)
	st := &sendStats{viewers: map[string]int{}, anonymous: map[string]bool{}}
	seqs := make([]int64, cfg.Partitions)
	for range o.clicks {
		ev := g.Next()
		p := ev.Partition
		seqs[p]++
		var key *string
		if ev.Viewer != "" {
			k := ev.Viewer
			key = &k
			st.viewers[ev.Viewer]++
			st.anonymous[ev.Viewer] = strings.HasPrefix(ev.Viewer, "s-")
		}
		perPartition[p] = append(perPartition[p], hostsim.Event{Body: ev.Body, Properties: ev.Properties, PartitionKey: key,
			SequenceNumber: seqs[p], Offset: seqs[p] * 512, EnqueuedTime: ev.Time.Add(150 * time.Millisecond)})
	}
	// Two consumer groups read the hub independently, as in Azure.
	consumers := []struct{ function, group string }{{"RecentlyViewed", "recently-viewed"}, {"Trends", "trends"}}
	var sent, invocations, redelivered atomic.Int64
	total := int64(o.clicks * len(consumers))
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Partitions*len(consumers))
	progress := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-progress:
				return
			case <-t.C:
				fmt.Printf("   ... %d/%d events delivered (%.0f/s)\n", sent.Load(), total, float64(sent.Load())/time.Since(start).Seconds())
			}
		}
	}()
	for _, c := range consumers {
		for p, evs := range perPartition {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pc := protocol.PartitionContext{FullyQualifiedNamespace: "local.servicebus.windows.net", EventHubName: "clickstream", ConsumerGroup: c.group, PartitionID: strconv.Itoa(p)}
				for i := 0; i < len(evs); i += o.batch {
					b := evs[i:min(i+o.batch, len(evs))]
					times := 1
					if float64((i/o.batch*7919+p*104729)%1000)/1000 < o.redeliver {
						times = 2 // the host lost a checkpoint and redelivers the batch
						redelivered.Add(1)
					}
					for range times {
						env := hostsim.EventHubBatch(c.function, "events", pc, b, &protocol.RetryContext{RetryCount: 0, MaxRetryCount: 5})
						res, err := host.Invoke(ctx, c.function, env)
						if err != nil {
							errc <- err
							return
						}
						if res.Status != 200 {
							errc <- fmt.Errorf("%s partition %d: status %d: %s", c.function, p, res.Status, res.Raw)
							return
						}
						invocations.Add(1)
					}
					sent.Add(int64(len(b)))
				}
			}()
		}
	}
	wg.Wait()
	close(progress)
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	st.events, st.invocations, st.redelivered, st.elapsed = int(sent.Load()), int(invocations.Load()), int(redelivered.Load()), time.Since(start)
	return st, nil
}

func showDeadLetters(ctx context.Context, o options) error {
	db, err := embedded.Open(o.data)
	if err != nil {
		return err
	}
	defer db.Close()
	s, err := deadletter.Open(db, []string{"RecentlyViewed", "Trends", "ProductChanges", "CaptureRollup"})
	if err != nil {
		return err
	}
	reasons := map[string]int{}
	n := 0
	var sample *deadletter.Record
	err = s.List(ctx, "", func(r deadletter.Record) error {
		n++
		reason, _, _ := strings.Cut(r.Reason, ":")
		reasons[r.Function+": "+r.Kind+": "+reason]++
		if sample == nil {
			sample = &r
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("   %d records (each consumer keeps its own; the rest of every batch was processed):\n", n)
	printCounts(reasons)
	if sample != nil {
		fmt.Printf("   e.g. partition %s sequence %d enqueued %s: %q\n", sample.Partition, sample.SequenceNumber, sample.EnqueuedTime.Format(time.RFC3339), truncate(sample.Body, 60))
	}
	return nil
}

func showRecent(ctx context.Context, host *hostsim.Client, viewer string) error {
	r := httptest.NewRequest(http.MethodGet, "https://contoso-pipeline.azurewebsites.net/api/users/"+viewer+"/recently-viewed?limit=5", nil)
	env, err := hostsim.HTTP("GetRecentlyViewed", "req", r, map[string]string{"userId": viewer}, hostsim.FunctionKey("default"))
	if err != nil {
		return err
	}
	res, err := host.Invoke(ctx, "GetRecentlyViewed", env)
	if err != nil {
		return err
	}
	out, err := res.HTTPOutput("res")
	if err != nil {
		return err
	}
	var body struct {
		Items []struct {
			ProductID string `json:"productId"`
			ViewedAt  string `json:"viewedAt"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out.Body), &body); err != nil {
		return errors.New("GetRecentlyViewed: " + out.Body)
	}
	kind := "shopper"
	if strings.HasPrefix(viewer, "s-") {
		kind = "anonymous session"
	}
	fmt.Printf("   %s %s -> %s\n", kind, viewer, out.StatusCode)
	for _, it := range body.Items {
		fmt.Printf("      %s  viewed %s\n", it.ProductID, it.ViewedAt)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
