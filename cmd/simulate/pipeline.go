package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/clickgen"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

// timer fires a timer function once, as the host would at its schedule.
func timer(ctx context.Context, host *hostsim.Client, function string) (*hostsim.Result, error) {
	now := time.Now().UTC()
	res, err := host.Invoke(ctx, function, hostsim.Timer(function, "timer", now.Add(-time.Minute), now.Add(time.Minute), false, &protocol.RetryContext{MaxRetryCount: 2}))
	if err != nil {
		return nil, err
	}
	if res.Status != 200 {
		return nil, fmt.Errorf("%s: status %d: %s", function, res.Status, res.Raw)
	}
	return res, nil
}

// httpCall invokes an HTTP function through the host's envelope and returns its http output.
func httpCall(ctx context.Context, host *hostsim.Client, function string, r *http.Request, params map[string]string, ids []protocol.Identity) (*protocol.HTTPResponse, error) {
	env, err := hostsim.HTTP(function, "req", r, params, ids)
	if err != nil {
		return nil, err
	}
	res, err := host.Invoke(ctx, function, env)
	if err != nil {
		return nil, err
	}
	return res.HTTPOutput("res")
}

func showTrending(ctx context.Context, host *hostsim.Client) error {
	if _, err := timer(ctx, host, "MaterializeTrends"); err != nil {
		return err
	}
	fmt.Printf("\n== trending: MaterializeTrends ran once; GET /api/trending (one point read per request)\n")
	for _, q := range []string{"window=1h&limit=5", "window=1h&limit=3&category=" + clickgen.Categories[0]} {
		out, err := httpCall(ctx, host, "GetTrending", httptest.NewRequest(http.MethodGet, "https://contoso-pipeline.azurewebsites.net/api/trending?"+q, nil), nil, hostsim.FunctionKey("default"))
		if err != nil {
			return err
		}
		var body struct {
			Window string `json:"window"`
			AsOf   string `json:"asOf"`
			Top    []struct {
				ProductID string `json:"productId"`
				Views     int    `json:"views"`
			} `json:"top"`
			Rising []struct {
				ProductID string  `json:"productId"`
				Growth    float64 `json:"growth"`
			} `json:"rising"`
		}
		if err := json.Unmarshal([]byte(out.Body), &body); err != nil || out.StatusCode != "200" {
			return fmt.Errorf("GetTrending %s: %s %s", q, out.StatusCode, out.Body)
		}
		fmt.Printf("   ?%s -> %s, as of %s\n", q, out.StatusCode, body.AsOf)
		for i, p := range body.Top {
			fmt.Printf("      %d. %s  %d views\n", i+1, p.ProductID, p.Views)
		}
		if len(body.Rising) > 0 {
			fmt.Printf("      rising: %s (growth %.1f)\n", body.Rising[0].ProductID, body.Rising[0].Growth)
		}
	}
	res, err := timer(ctx, host, "DetectAnomalies")
	if err != nil {
		return err
	}
	fmt.Printf("   DetectAnomalies ran once: %s\n", lastLog(res))
	return nil
}

func lastLog(res *hostsim.Result) string {
	if res.Response == nil || len(res.Response.Logs) == 0 {
		return ""
	}
	return res.Response.Logs[len(res.Response.Logs)-1]
}

// partner is a partner's webhook: it answers the CloudEvents abuse-protection handshake and counts
// what it receives, as examples/partner-webhook does.
type partner struct {
	mu    sync.Mutex
	types map[string]int
	srv   *httptest.Server
}

func newPartner() *partner {
	p := &partner{types: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.Header().Set("WebHook-Allowed-Origin", r.Header.Get("WebHook-Request-Origin"))
			w.Header().Set("Allow", "POST")
			return
		}
		b, _ := io.ReadAll(r.Body)
		var evs []struct {
			Type string `json:"type"`
		}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents-batch+json") {
			json.Unmarshal(b, &evs)
		} else {
			var e struct {
				Type string `json:"type"`
			}
			json.Unmarshal(b, &e)
			if e.Type == "" {
				e.Type = r.Header.Get("ce-type")
			}
			evs = append(evs, e)
		}
		p.mu.Lock()
		for _, e := range evs {
			p.types[e.Type]++
		}
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	return p
}

func product(id string, price float64, stock int, lsn int, extra string) json.RawMessage {
	n := 0
	fmt.Sscanf(strings.TrimPrefix(id, "p-"), "%d", &n)
	return json.RawMessage(fmt.Sprintf(`{"id":%q,"name":"Product %d","category":%q,"price":%.2f,"currency":"EUR","stock":%d,"description":"A fine %s product"%s,"_rid":"r%d","_self":"dbs/x/colls/y/docs/%d/","_etag":"\"%08x-0000\"","_attachments":"attachments/","_ts":%d,"_lsn":%d}`,
		id, n, clickgen.CategoryOf(n), price, stock, clickgen.CategoryOf(n), extra, n, n, lsn*7919+n, time.Now().Unix()+int64(lsn), lsn))
}

func showProductChanges(ctx context.Context, host *hostsim.Client, data string, p *partner) error {
	fmt.Printf("\n== product changes: Cosmos DB change feed -> ProductChanges -> ProductEventsTopic\n")
	send := func(docs []json.RawMessage) error {
		res, err := host.Invoke(ctx, "ProductChanges", hostsim.CosmosChanges("ProductChanges", "documents", docs, &protocol.RetryContext{MaxRetryCount: 5}))
		if err != nil {
			return err
		}
		if res.Status != 200 {
			return fmt.Errorf("ProductChanges: status %d: %s", res.Status, res.Raw)
		}
		fmt.Printf("   %d documents: %s\n", len(docs), lastLog(res))
		return nil
	}
	var created []json.RawMessage
	for i := 1; i <= 20; i++ {
		created = append(created, product(clickgen.ProductID(i), 10+float64(i), 5+i%3, 1, ""))
	}
	if err := send(created); err != nil {
		return err
	}
	updates := []json.RawMessage{
		product(clickgen.ProductID(1), 9.99, 6, 2, ""),                           // price change
		product(clickgen.ProductID(2), 12, 0, 2, ""),                             // out of stock
		product(clickgen.ProductID(3), 13, 5, 2, ""),                             // stock 6 -> 5: nothing to publish
		product(clickgen.ProductID(4), 14, 6, 2, `,"warehouseBin":"B-12"`),       // internal field only: nothing
		product(clickgen.ProductID(5), 15, 7, 2, `,"isDeleted":true,"ttl":3600`), // soft delete
		json.RawMessage(`{"id":"p-bad","name":"Broken","category":"tools","price":"12,50","currency":"EUR","stock":1,"_etag":"\"x\"","_ts":1,"_lsn":3}`),
	}
	if err := send(updates); err != nil {
		return err
	}
	if err := send(updates[:5]); err != nil { // the change feed delivers them again
		return err
	}
	counts, err := countTypes(filepath.Join(data, "events", "ProductEventsTopic.jsonl"))
	if err != nil {
		return err
	}
	fmt.Printf("   published to %s (a redelivered batch published nothing new):\n", filepath.Join(data, "events", "ProductEventsTopic.jsonl"))
	printCounts(counts)
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Printf("   the partner webhook at %s received (after the CloudEvents handshake):\n", p.srv.URL)
	printCounts(p.types)
	return nil
}

func countTypes(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			counts[e.Type]++
		}
	}
	return counts, sc.Err()
}

func printCounts(m map[string]int) {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Printf("   %6d  %s\n", m[k], k)
	}
}

func showFeedback(ctx context.Context, host *hostsim.Client, data string) error {
	fmt.Printf("\n== partner feedback: POST /api/feedback (function key partner-acme) -> Event Hubs feedback\n")
	post := func(label, key, contentType, body string, headers map[string]string) error {
		r := httptest.NewRequest(http.MethodPost, "https://contoso-pipeline.azurewebsites.net/api/feedback", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		for k, v := range headers {
			r.Header.Set(k, v)
		}
		var ids []protocol.Identity
		if key != "" {
			ids = hostsim.FunctionKey(key)
		}
		out, err := httpCall(ctx, host, "PartnerFeedback", r, nil, ids)
		if err != nil {
			return err
		}
		fmt.Printf("   %-34s -> %s %s\n", label, out.StatusCode, truncate(strings.TrimSpace(out.Body), 110))
		return nil
	}
	review := `{"kind":"product","productId":"p-00001","rating":4,"title":"Sturdy","comment":"Good grip.","locale":"en-GB"}`
	steps := []struct {
		label, key, ct, body string
		h                    map[string]string
	}{
		{"product review", "partner-acme", "application/json", review, map[string]string{"Idempotency-Key": "acme-review-1"}},
		{"the same review again", "partner-acme", "application/json", review, map[string]string{"Idempotency-Key": "acme-review-1"}},
		{"structured CloudEvent", "partner-acme", "application/cloudevents+json", `{"specversion":"1.0","id":"acme-42","source":"/acme/crm","type":"com.contoso.feedback.customer.submitted","data":{"kind":"customer","orderId":"o-981","rating":2,"comment":"Late delivery."}}`, nil},
		{"rating 9, no productId", "partner-acme", "application/json", `{"kind":"product","rating":9}`, nil},
		{"no key", "", "application/json", review, nil},
		{"the default key", "default", "application/json", review, nil},
	}
	for _, s := range steps {
		if err := post(s.label, s.key, s.ct, s.body, s.h); err != nil {
			return err
		}
	}
	counts, err := countTypes(filepath.Join(data, "events", "feedback.jsonl"))
	if err != nil {
		return err
	}
	fmt.Printf("   published to %s:\n", filepath.Join(data, "events", "feedback.jsonl"))
	printCounts(counts)
	return nil
}

// showBatchJobs writes yesterday's clickstream as Event Hubs Capture files (Avro, Capture's layout,
// under LOCAL_DATA_DIR/capture), fires the daily CaptureRollup timer, and reads recommendations.
func showBatchJobs(ctx context.Context, host *hostsim.Client, data string, clicks int) error {
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	fmt.Printf("\n== batch jobs: %d of yesterday's clicks (%s) as Capture Avro files -> CaptureRollup -> reports, recommendations\n", clicks, day.Format("2006-01-02"))
	cfg := clickgen.Default()
	cfg.Seed = 7
	cfg.Start = day
	cfg.Rate = time.Duration(float64(24*time.Hour) / float64(clicks) * 0.999)
	w, err := capture.NewDayWriter(capture.Dir{Root: filepath.Join(data, "capture")}, "contoso", "clickstream", 5*time.Minute, capture.WriterOptions{Codec: capture.Codec("deflate")})
	if err != nil {
		return err
	}
	g := clickgen.New(cfg)
	for range clicks {
		e := g.Next()
		if err := w.Write(e.Partition, capture.Event{EnqueuedTime: e.Time.Add(30 * time.Millisecond), Properties: e.Properties, Body: e.Body}); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Printf("   wrote %d Capture files\n", w.Files())
	start := time.Now()
	res, err := timer(ctx, host, "CaptureRollup")
	if err != nil {
		return err
	}
	fmt.Printf("   CaptureRollup in %v: %s\n", time.Since(start).Round(time.Millisecond), lastLog(res))
	dir := filepath.Join(data, "reports", "daily", day.Format("2006-01-02"))
	if b, err := os.ReadFile(filepath.Join(dir, "products.csv")); err == nil {
		lines := strings.SplitN(string(b), "\n", 4)
		fmt.Printf("   %s:\n", filepath.Join(dir, "products.csv"))
		for _, l := range lines[:min(3, len(lines))] {
			fmt.Printf("      %s\n", truncate(l, 120))
		}
	}
	counts, err := countTypes(filepath.Join(data, "events", "AnalyticsEventsTopic.jsonl"))
	if err == nil {
		fmt.Printf("   published to %s:\n", filepath.Join(data, "events", "AnalyticsEventsTopic.jsonl"))
		printCounts(counts)
	}
	for _, p := range []string{clickgen.ProductID(0), "p-99999"} {
		out, err := httpCall(ctx, host, "GetRecommendations", httptest.NewRequest(http.MethodGet, "https://contoso-pipeline.azurewebsites.net/api/products/"+p+"/recommendations?limit=3", nil), map[string]string{"productId": p}, hostsim.FunctionKey("default"))
		if err != nil {
			return err
		}
		fmt.Printf("   GET /api/products/%s/recommendations?limit=3 -> %s %s\n", p, out.StatusCode, truncate(strings.TrimSpace(out.Body), 150))
	}
	return nil
}
