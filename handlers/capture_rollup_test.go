package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/jobs"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

var rollupDay = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

type capturedEvents struct {
	mu     sync.Mutex
	events []event.Event
}

func (c *capturedEvents) Publish(ctx context.Context, evs []event.Event, lastAttempt bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, evs...)
	return nil
}

// flakyFiles fails every operation while down is set (Cosmos DB throttling, say).
type flakyFiles struct {
	docstore.Collection[jobs.FileState]
	down bool
}

func (f *flakyFiles) Get(ctx context.Context, pk, id string) (jobs.FileState, docstore.ETag, error) {
	if f.down {
		return jobs.FileState{}, "", errors.New("429 too many requests")
	}
	return f.Collection.Get(ctx, pk, id)
}

type jobsEnv struct {
	t       *testing.T
	capture capture.Dir
	rollup  *jobs.Rollup
	files   *flakyFiles
	recs    docstore.Collection[jobs.Recommendation]
	dead    *deadletter.Docs
	pub     *capturedEvents
	host    *hostsim.Client
	srv     *httptest.Server
}

func newJobsEnv(t *testing.T, now time.Time) *jobsEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := embedded.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	days, _ := embedded.NewCollection[jobs.DayState](db, "jobState")
	files, _ := embedded.NewCollection[jobs.FileState](db, "jobState.files")
	recs, _ := embedded.NewCollection[jobs.Recommendation](db, "recommendations")
	e := &jobsEnv{t: t, capture: capture.Dir{Root: filepath.Join(dir, "capture")}, files: &flakyFiles{Collection: files}, recs: recs,
		dead: deadlettertest.Local(t, handlers.Functions()...), pub: &capturedEvents{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.rollup = &jobs.Rollup{Source: e.capture, Container: "capture", Reports: jobs.Dir{Root: filepath.Join(dir, "reports")},
		Stores: jobs.Stores{Days: days, Files: e.files, Recommendations: recs}, DeadLetters: e.dead, Publisher: e.pub,
		Now: func() time.Time { return now }, Log: log}
	deps := handlers.Deps{Log: log, DeadLetters: e.dead, Now: func() time.Time { return now }, Rollup: e.rollup,
		Recommendations: &jobs.Recommender{Store: recs, Trending: staticTrending{"tools": {{ProductID: "p-7", Score: 120}, {ProductID: "p-8", Score: 90}}}}}
	e.srv = httptest.NewServer(handlers.New(deps))
	t.Cleanup(e.srv.Close)
	e.host = &hostsim.Client{BaseURL: e.srv.URL}
	return e
}

type staticTrending map[string][]jobs.Scored

func (s staticTrending) TopInCategory(ctx context.Context, category string, limit int) ([]jobs.Scored, error) {
	return s[category], nil
}

func (e *jobsEnv) invoke(fn string, body []byte) *hostsim.Result {
	e.t.Helper()
	return invokeAsHost(e.t, e.host, fn, body)
}

// writeCapture writes a Capture file of views (session s-<i%3>, product p-<i%4>) and returns its path.
func (e *jobsEnv) writeCapture(partition string, window time.Time, n int) capture.Path {
	e.t.Helper()
	p := capture.Path{Namespace: "contoso", EventHub: "clickstream", Partition: partition, Window: window}
	f, err := e.capture.Create(p)
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := capture.NewWriter(f, capture.WriterOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	for i := range n {
		at := window.Add(time.Duration(i) * time.Second)
		body := fmt.Sprintf(`{"specversion":"1.0","id":"%s-%d","source":"/web","type":"com.contoso.clickstream.product.viewed","time":%q,"data":{"sessionId":"s-%d","productId":"p-%d","category":"tools"}}`,
			partition, i, at.Format(time.RFC3339), i%3, i%4)
		if err := w.Write(capture.Event{SequenceNumber: int64(i), Offset: fmt.Sprint(i), EnqueuedTime: at, Body: []byte(body)}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		e.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func fileCreated(p capture.Path, count int, eventGridSchema bool) map[string]any {
	data := map[string]any{"fileUrl": "https://contosodata.blob.core.windows.net/capture/" + p.Name(), "fileType": "AzureBlockBlob",
		"partitionId": p.Partition, "sizeInBytes": 1000, "eventCount": count, "firstSequenceNumber": 0, "lastSequenceNumber": count - 1,
		"firstEnqueueTime": p.Window.Format(time.RFC3339), "lastEnqueueTime": p.Window.Add(time.Minute).Format(time.RFC3339)}
	if eventGridSchema {
		return map[string]any{"topic": "/subscriptions/s/providers/Microsoft.EventHub/namespaces/contoso", "subject": "eventhubs/clickstream",
			"eventType": capture.TypeFileCreated, "eventTime": p.Window.Format(time.RFC3339), "id": "eg-" + p.Name(), "data": data,
			"dataVersion": "", "metadataVersion": "1"}
	}
	return map[string]any{"specversion": "1.0", "type": capture.TypeFileCreated, "source": "/subscriptions/s/providers/Microsoft.EventHub/namespaces/contoso",
		"id": "ce-" + p.Name(), "subject": "eventhubs/clickstream", "time": p.Window.Format(time.RFC3339), "data": data}
}

func (e *jobsEnv) fileState(p capture.Path) (jobs.FileState, bool) {
	var found jobs.FileState
	ok := false
	e.files.List(context.Background(), "clickstream-rollup/"+p.Window.Format("2006-01-02"), func(_ string, st jobs.FileState, _ docstore.ETag) error {
		if st.Name == p.Name() {
			found, ok = st, true
		}
		return nil
	})
	return found, ok
}

func (e *jobsEnv) deadLetters(function string) []deadletter.Record {
	var out []deadletter.Record
	e.dead.List(context.Background(), function, func(r deadletter.Record) error { out = append(out, r); return nil })
	return out
}

func TestCaptureFileCreated(t *testing.T) {
	now := rollupDay.Add(10 * time.Hour)
	e := newJobsEnv(t, now)
	for i, schema := range []bool{false, true} {
		p := e.writeCapture(fmt.Sprint(i), rollupDay.Add(9*time.Hour), 12)
		res := e.invoke(handlers.FnCaptureFileCreated, hostsim.Object(handlers.FnCaptureFileCreated, "event", fileCreated(p, 12, schema)))
		if res.Status != 200 {
			t.Fatalf("event grid schema %v: status %d %s", schema, res.Status, res.Raw)
		}
		st, ok := e.fileState(p)
		if !ok || st.Status != jobs.FileProcessed || st.Counts.Events != 12 || st.Counts.Views != 12 || st.By != handlers.FnCaptureFileCreated {
			t.Fatalf("file state %+v (found %v)", st, ok)
		}
		// A redelivery does not read the file again.
		processed := st.ProcessedAt
		res = e.invoke(handlers.FnCaptureFileCreated, hostsim.Object(handlers.FnCaptureFileCreated, "event", fileCreated(p, 12, schema)))
		if st, _ := e.fileState(p); res.Status != 200 || !st.ProcessedAt.Equal(processed) {
			t.Fatalf("redelivery: status %d, state %+v", res.Status, st)
		}
	}

	// A transient store failure fails the invocation, so Event Grid retries it.
	p := e.writeCapture("5", rollupDay.Add(9*time.Hour), 3)
	e.files.down = true
	if res := e.invoke(handlers.FnCaptureFileCreated, hostsim.Object(handlers.FnCaptureFileCreated, "event", fileCreated(p, 3, false))); res.Status != 500 {
		t.Fatalf("store down: status %d, want 500", res.Status)
	}
	e.files.down = false

	// A corrupt file is dead-lettered with its name; the invocation succeeds.
	bad := e.writeCapture("6", rollupDay.Add(9*time.Hour), 30)
	path := filepath.Join(e.capture.Root, filepath.FromSlash(bad.Name()))
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-10], 0o644)
	if res := e.invoke(handlers.FnCaptureFileCreated, hostsim.Object(handlers.FnCaptureFileCreated, "event", fileCreated(bad, 30, false))); res.Status != 200 {
		t.Fatalf("corrupt file: status %d %s", res.Status, res.Raw)
	}
	recs := e.deadLetters(jobs.DeadLetterFunction)
	if len(recs) != 1 || !strings.Contains(recs[0].Reason, bad.Name()) {
		t.Fatalf("dead letters %+v", recs)
	}

	// A file that is not there, a notification that is not valid: dead-lettered, 200.
	gone := capture.Path{Namespace: "contoso", EventHub: "clickstream", Partition: "7", Window: rollupDay.Add(9 * time.Hour)}
	if res := e.invoke(handlers.FnCaptureFileCreated, hostsim.Object(handlers.FnCaptureFileCreated, "event", fileCreated(gone, 1, false))); res.Status != 200 {
		t.Fatalf("missing file: status %d %s", res.Status, res.Raw)
	}
	invalid := fileCreated(p, 3, false)
	invalid["data"].(map[string]any)["fileUrl"] = "https://contosodata.blob.core.windows.net/other/x.avro"
	if res := e.invoke(handlers.FnCaptureFileCreated, hostsim.Object(handlers.FnCaptureFileCreated, "event", invalid)); res.Status != 200 {
		t.Fatalf("invalid notification: status %d", res.Status)
	}
	if recs := e.deadLetters(handlers.FnCaptureFileCreated); len(recs) != 1 || !strings.Contains(recs[0].Body, "other/x.avro") {
		t.Fatalf("notification dead letters %+v", recs)
	}
	if n := len(e.deadLetters(jobs.DeadLetterFunction)); n != 2 {
		t.Fatalf("%d Capture dead letters, want the corrupt and the missing file", n)
	}
	// Other event types and other hubs are skipped.
	other := fileCreated(p, 3, false)
	other["type"] = "Microsoft.Storage.BlobCreated"
	feedback := capture.Path{Namespace: "contoso", EventHub: "feedback", Partition: "0", Window: rollupDay}
	for _, ev := range []map[string]any{other, fileCreated(feedback, 1, false)} {
		if res := e.invoke(handlers.FnCaptureFileCreated, hostsim.Object(handlers.FnCaptureFileCreated, "event", ev)); res.Status != 200 {
			t.Fatalf("skipped event: status %d", res.Status)
		}
	}
	if recs := e.deadLetters(""); len(recs) != 3 {
		t.Fatalf("%d dead letters after skipped events, want 3", len(recs))
	}
}

func TestCaptureRollupTimer(t *testing.T) {
	now := rollupDay.AddDate(0, 0, 1).Add(30 * time.Minute)
	e := newJobsEnv(t, now)
	p := e.writeCapture("0", rollupDay.Add(9*time.Hour), 40)
	e.writeCapture("1", rollupDay.AddDate(0, 0, -2).Add(9*time.Hour), 10) // a missed day
	// The file was announced; the timer merges it without reading it again.
	if res := e.invoke(handlers.FnCaptureFileCreated, hostsim.Object(handlers.FnCaptureFileCreated, "event", fileCreated(p, 40, false))); res.Status != 200 {
		t.Fatal(res.Status)
	}
	body := hostsim.Timer(handlers.FnCaptureRollup, "timer", now.AddDate(0, 0, -3), now.AddDate(0, 0, 1), true, &protocol.RetryContext{MaxRetryCount: 3})
	res := e.invoke(handlers.FnCaptureRollup, body)
	if res.Status != 200 {
		t.Fatalf("status %d %s", res.Status, res.Raw)
	}
	// The last run was three days ago: the two missed days (one without traffic) and yesterday.
	if len(e.pub.events) != 3 {
		t.Fatalf("%d completion events, want 3: %s", len(e.pub.events), res.Raw)
	}
	if got, want := e.pub.events[2].ID(), jobs.CompletionID(jobs.JobRollup, rollupDay); got != want {
		t.Errorf("event id %s, want %s", got, want)
	}
	logs := strings.Join(res.Response.Logs, "\n")
	if !strings.Contains(logs, "day=2026-11-24") || !strings.Contains(logs, "day=2026-11-22") || !strings.Contains(logs, "read=0") {
		t.Errorf("logs:\n%s", logs)
	}
	// The same timer again: nothing to do.
	if res := e.invoke(handlers.FnCaptureRollup, body); res.Status != 200 || len(e.pub.events) != 3 {
		t.Fatalf("second run: status %d, %d events", res.Status, len(e.pub.events))
	}
}

func TestGetRecommendations(t *testing.T) {
	e := newJobsEnv(t, rollupDay.AddDate(0, 0, 1))
	ctx := context.Background()
	doc := jobs.Recommendation{ID: "p-1", ProductID: "p-1", Category: "tools", Day: "2026-11-24",
		Items: []jobs.Scored{{ProductID: "p-2", Score: 7.5}, {ProductID: "p-3", Score: 4}}}
	if _, err := e.recs.Put(ctx, "p-1", "p-1", doc, docstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.recs.Put(ctx, "p-9", "p-9", jobs.Recommendation{ID: "p-9", ProductID: "p-9", Category: "tools", Day: "2026-11-24"}, docstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string, map[string]any) {
		t.Helper()
		// The forwarded path and the envelope path answer the same.
		res, err := http.Get(e.srv.URL + "/api" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		r, _ := http.NewRequest(http.MethodGet, "https://contoso.azurewebsites.net/api"+path, nil)
		id, _ := url.PathUnescape(strings.Split(strings.TrimPrefix(path, "/products/"), "/")[0])
		env, err := hostsim.HTTP(handlers.FnGetRecommendations, "req", r, map[string]string{"productId": id}, hostsim.FunctionKey("default"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.host.Invoke(ctx, handlers.FnGetRecommendations, env)
		if err != nil {
			t.Fatal(err)
		}
		hr, err := out.HTTPOutput("res")
		if err != nil {
			t.Fatal(err)
		}
		if hr.StatusCode != fmt.Sprint(res.StatusCode) || strings.TrimSpace(hr.Body) != strings.TrimSpace(string(raw)) {
			t.Errorf("%s: envelope %s %s, forwarded %d %s", path, hr.StatusCode, hr.Body, res.StatusCode, raw)
		}
		var m map[string]any
		json.Unmarshal(raw, &m)
		return res.StatusCode, res.Header.Get("Content-Type"), m
	}
	status, ct, body := get("/products/p-1/recommendations?limit=1")
	if status != 200 || !strings.HasPrefix(ct, "application/json") || body["source"] != "viewed-together" || body["fallback"] != false ||
		fmt.Sprint(body["items"]) != "[map[productId:p-2 score:7.5]]" {
		t.Errorf("viewed together: %d %s %v", status, ct, body)
	}
	status, _, body = get("/products/p-9/recommendations")
	if status != 200 || body["source"] != "trending-fallback" || body["fallback"] != true || body["category"] != "tools" ||
		fmt.Sprint(body["items"]) != "[map[productId:p-7 score:120] map[productId:p-8 score:90]]" {
		t.Errorf("fallback: %d %v", status, body)
	}
	for _, path := range []string{"/products/p-1/recommendations?limit=0", "/products/p-1/recommendations?limit=21",
		"/products/p-1/recommendations?limit=x", "/products/p-1/recommendations?limit=2&limit=3", "/products/%20p-1/recommendations"} {
		status, ct, body := get(path)
		if status != 400 || ct != "application/problem+json" || body["errors"] == nil {
			t.Errorf("%s: %d %s %v, want a 400 problem", path, status, ct, body)
		}
	}
}
