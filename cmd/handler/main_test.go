package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/internal/standins"
	"github.com/contoso/eventpipeline/pkg/azure/blob"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// These tests run the built handler as the Functions host does: a child process given
// FUNCTIONS_CUSTOMHANDLER_PORT, polled on GET / every 25 ms, invoked with envelopes.

var handlerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "handler-bin")
	if err != nil {
		panic(err)
	}
	handlerBin = filepath.Join(dir, "handler")
	out, err := exec.Command("go", "build", "-o", handlerBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build handler: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	cmd   *exec.Cmd
	url   string
	ready time.Duration
	out   *strings.Builder
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func start(t *testing.T, env ...string) *proc {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(handlerBin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "FUNCTIONS_CUSTOMHANDLER_PORT=" + strconv.Itoa(port)}, env...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), out: out}
	t.Cleanup(p.stop)
	for {
		res, err := http.Get(p.url + "/")
		if err == nil {
			res.Body.Close()
			p.ready = time.Since(begin)
			return p
		}
		if time.Since(begin) > 30*time.Second {
			t.Fatalf("handler not ready after 30s:\n%s", out)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (p *proc) stop() {
	if p.cmd.ProcessState != nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func clickBatch(user string, seq int64, products ...string) []hostsim.Event {
	var evs []hostsim.Event
	for i, p := range products {
		body := fmt.Sprintf(`{"specversion":"1.0","id":"%s-%d","source":"/web","type":"com.contoso.clickstream.product.viewed","time":%q,"data":{"userId":%q,"productId":%q}}`,
			user, seq+int64(i), t0.Add(time.Duration(seq+int64(i))*time.Second).Format(time.RFC3339), user, p)
		evs = append(evs, hostsim.Event{Body: []byte(body), SequenceNumber: seq + int64(i), EnqueuedTime: t0})
	}
	return evs
}

var pc = protocol.PartitionContext{EventHubName: "clickstream", ConsumerGroup: "recently-viewed", PartitionID: "0"}

func (p *proc) invoke(t *testing.T, fn string, body []byte) *hostsim.Result {
	t.Helper()
	res, err := (&hostsim.Client{BaseURL: p.url}).Invoke(context.Background(), fn, body)
	if err != nil {
		t.Fatalf("%s: %v\n%s", fn, err, p.out)
	}
	return res
}

func (p *proc) recent(t *testing.T, user string) []string {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://app.azurewebsites.net/api/users/"+user+"/recently-viewed", nil)
	env, _ := hostsim.HTTP("GetRecentlyViewed", "req", r, map[string]string{"userId": user}, hostsim.FunctionKey("default"))
	res := p.invoke(t, "GetRecentlyViewed", env)
	out, err := res.HTTPOutput("res")
	if err != nil || out.StatusCode != "200" {
		t.Fatalf("GetRecentlyViewed: %v %+v\n%s", err, out, p.out)
	}
	var body struct{ Items []struct{ ProductID string } }
	json.Unmarshal([]byte(out.Body), &body)
	var ps []string
	for _, it := range body.Items {
		ps = append(ps, it.ProductID)
	}
	return ps
}

func TestEmbeddedStateSurvivesRestart(t *testing.T) {
	data := t.TempDir()
	p := start(t, "LOCAL_DATA_DIR="+data)
	t.Logf("ready in %v", p.ready)
	if res := p.invoke(t, "RecentlyViewed", hostsim.EventHubBatch("RecentlyViewed", "events", pc, clickBatch("u1", 1, "p1", "p2"), nil)); res.Status != 200 {
		t.Fatalf("status %d %s", res.Status, res.Raw)
	}
	if !strings.Contains(p.out.String(), `"cosmos":"embedded`) {
		t.Errorf("start-up log does not say which mode Cosmos DB runs in:\n%s", p.out)
	}
	p.stop()
	p2 := start(t, "LOCAL_DATA_DIR="+data)
	if got := fmt.Sprint(p2.recent(t, "u1")); got != "[p2 p1]" {
		t.Fatalf("after restart u1 = %s", got)
	}
}

func TestBadSettingStopsStartup(t *testing.T) {
	for _, tt := range []struct{ env, name string }{
		{"CosmosDBConnection=AccountEndpoint=notaurl;AccountKey=x", "CosmosDBConnection"},
		{"EventHubsConnection=garbage", "EventHubsConnection"},
		{"RECENTLY_VIEWED_TTL_DAYS=-3", "RECENTLY_VIEWED_TTL_DAYS"},
		{"ProductEventsTopic__topicEndpointUri=http://insecure.example/api/events", "ProductEventsTopic__topicEndpointUri"},
		{"FUNCTIONS_CUSTOMHANDLER_PORT=99999", "FUNCTIONS_CUSTOMHANDLER_PORT"},
	} {
		cmd := exec.Command(handlerBin)
		cmd.Env = []string{"FUNCTIONS_CUSTOMHANDLER_PORT=" + strconv.Itoa(freePort(t)), "LOCAL_DATA_DIR=" + t.TempDir(), tt.env}
		out, err := cmd.CombinedOutput()
		exit, ok := err.(*exec.ExitError)
		if !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "setting "+tt.name) {
			t.Errorf("%s: err %v, output %q; want exit 2 naming the setting", tt.env, err, out)
		}
	}
}

// A host.json whose functionTimeout cannot be read stops start-up naming it: the invocation deadlines
// come from it.
func TestBadFunctionTimeoutStopsStartup(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "host.json"), []byte(`{"version":"2.0","functionTimeout":"ten minutes"}`), 0o644)
	cmd := exec.Command(handlerBin)
	cmd.Env = []string{"FUNCTIONS_CUSTOMHANDLER_PORT=" + strconv.Itoa(freePort(t)), "LOCAL_DATA_DIR=" + t.TempDir(), "FUNCTIONS_APP_ROOT_PATH=" + root}
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "functionTimeout") {
		t.Fatalf("err %v, output %q; want exit 2 naming functionTimeout", err, out)
	}
}

func TestUnreachableServiceDoesNotStopStartup(t *testing.T) {
	data := t.TempDir()
	// Nothing listens on port 1: the handler must start, and only invocations that need Cosmos fail.
	p := start(t, "LOCAL_DATA_DIR="+data, "CosmosDBConnection=AccountEndpoint=http://127.0.0.1:1/;AccountKey=C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==")
	evs := clickBatch("u1", 1, "p1")
	res := p.invoke(t, "RecentlyViewed", hostsim.EventHubBatch("RecentlyViewed", "events", pc, evs, &protocol.RetryContext{RetryCount: 0, MaxRetryCount: 2}))
	if res.Status != 500 {
		t.Fatalf("status %d, want 500 (retry): %s", res.Status, res.Raw)
	}
	// Last retry: parked in the (embedded) dead-letter store, invocation succeeds.
	res = p.invoke(t, "RecentlyViewed", hostsim.EventHubBatch("RecentlyViewed", "events", pc, evs, &protocol.RetryContext{RetryCount: 2, MaxRetryCount: 2}))
	if res.Status != 200 {
		t.Fatalf("last retry status %d: %s", res.Status, res.Raw)
	}
	// `handler deadletters` prints them, beside the running handler (the store is committed before
	// the 200, and the command opens it read-only).
	cmd := exec.Command(handlerBin, "deadletters", "-function", "RecentlyViewed")
	cmd.Env = []string{"LOCAL_DATA_DIR=" + data}
	out, err := cmd.Output()
	if err != nil || strings.Count(string(out), `"kind":"parked"`) != 1 {
		t.Fatalf("handler deadletters: %v\n%s", err, out)
	}
	p.stop()
	n := 0
	for _, r := range localDeadLetters(t, data, "RecentlyViewed") {
		if r.Kind == deadletter.KindParked {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d parked records, want 1", n)
	}
}

// TestAgainstStandins runs the handler on its Azure adapters: Cosmos DB (the npm server over plain
// HTTP, since the production client verifies certificates) and Blob storage (Azurite).
func TestAgainstStandins(t *testing.T) {
	cosmosEP := standins.Require(t, "STANDINS_COSMOS_HTTP_ENDPOINT")
	azurite := standins.Require(t, "STANDINS_AZURITE_CONNECTION")
	db := fmt.Sprintf("e2e%d", time.Now().UnixNano())
	p := start(t, "LOCAL_DATA_DIR="+t.TempDir(),
		"CosmosDBConnection=AccountEndpoint="+cosmosEP+";AccountKey="+os.Getenv("STANDINS_COSMOS_KEY"),
		"COSMOS_DATABASE="+db, "COSMOS_CREATE_CONTAINERS=true", "StorageConnection="+azurite)
	evs := append(clickBatch("shopper-1", 10, "p9", "p8"), hostsim.Event{Body: []byte("oops"), SequenceNumber: 12, EnqueuedTime: t0})
	if res := p.invoke(t, "RecentlyViewed", hostsim.EventHubBatch("RecentlyViewed", "events", pc, evs, nil)); res.Status != 200 {
		t.Fatalf("status %d %s\n%s", res.Status, res.Raw, p.out)
	}
	// The "ready" line (with the modes) is logged once the stores are open, before any invocation runs.
	if !strings.Contains(p.out.String(), `"cosmos":"azure`) || !strings.Contains(p.out.String(), `"storage":"azure`) {
		t.Fatalf("not running on the Azure adapters:\n%s", p.out)
	}
	if got := fmt.Sprint(p.recent(t, "shopper-1")); got != "[p8 p9]" {
		t.Fatalf("shopper-1 = %s", got)
	}
	bc, err := blob.NewClient(&settings.Storage{ConnectionString: azurite})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	bc.DeadLetters().List(context.Background(), "RecentlyViewed", func(r deadletter.Record) error {
		if r.SequenceNumber == 12 && r.Body == "oops" {
			found = true
		}
		return nil
	})
	if !found {
		t.Fatal("malformed event not in the Azurite dead-letter container")
	}
}

// BenchmarkStartToReady measures process start to the first answered GET / (what the host waits
// for), polling every 0.2 ms instead of the host's 25 ms to resolve it; embedded defaults, existing
// empty data directory. Run: go test -run '^$' -bench StartToReady ./cmd/handler/
func BenchmarkStartToReady(b *testing.B) {
	data := b.TempDir()
	var total time.Duration
	for b.Loop() {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(handlerBin)
		cmd.Env = []string{"FUNCTIONS_CUSTOMHANDLER_PORT=" + strconv.Itoa(port), "LOCAL_DATA_DIR=" + data}
		begin := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		client := &http.Client{Timeout: time.Second}
		for {
			res, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
			if err == nil {
				res.Body.Close()
				break
			}
			if time.Since(begin) > 10*time.Second {
				b.Fatal("not ready after 10s")
			}
			time.Sleep(200 * time.Microsecond)
		}
		total += time.Since(begin)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-ready")
}

// localDeadLetters reads the embedded dead-letter store (a document log under LOCAL_DATA_DIR) of a
// handler that has stopped (and flushed).
func localDeadLetters(t *testing.T, data, function string) []deadletter.Record {
	t.Helper()
	db, err := embedded.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := deadletter.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs []deadletter.Record
	if err := store.List(context.Background(), function, func(r deadletter.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return recs
}
