package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/internal/standins"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

// trendsFlow runs the trends functions in the handler process p with the real clock: two partitions
// count views from two minutes ago, the timer materializes, GetTrending serves them, and the anomaly
// job runs (it only learns: there is no history).
func trendsFlow(t *testing.T, p *proc) {
	t.Helper()
	at := time.Now().UTC().Add(-2 * time.Minute)
	view := func(id, product, category string) hostsim.Event {
		body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/web","type":"com.contoso.clickstream.product.viewed","time":%q,"data":{"sessionId":"s-%s","productId":%q,"category":%q}}`,
			id, at.Format(time.RFC3339Nano), id, product, category)
		return hostsim.Event{Body: []byte(body), EnqueuedTime: at.Add(time.Second)}
	}
	for part, evs := range map[string][]hostsim.Event{
		"0": {view("a", "p-1", "tools"), view("b", "p-2", "garden"), view("c", "p-1", "tools")},
		"1": {view("d", "p-1", "tools"), view("e", "p-3", "garden")},
	} {
		for i := range evs {
			evs[i].SequenceNumber = int64(100 + i)
		}
		pc := protocol.PartitionContext{EventHubName: "clickstream", ConsumerGroup: "trends", PartitionID: part}
		for range 2 { // delivered twice: counted once
			if res := p.invoke(t, "Trends", hostsim.EventHubBatch("Trends", "events", pc, evs, &protocol.RetryContext{MaxRetryCount: 5})); res.Status != 200 {
				t.Fatalf("Trends: %d %s\n%s", res.Status, res.Raw, p.out)
			}
		}
	}
	now := time.Now()
	for _, fn := range []string{"MaterializeTrends", "DetectAnomalies"} {
		if res := p.invoke(t, fn, hostsim.Timer(fn, "timer", now.Add(-time.Minute), now.Add(time.Minute), false, &protocol.RetryContext{MaxRetryCount: 2})); res.Status != 200 {
			t.Fatalf("%s: %d %s\n%s", fn, res.Status, res.Raw, p.out)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "https://app.azurewebsites.net/api/trending?window=15m&limit=2", nil)
	env, err := hostsim.HTTP("GetTrending", "req", r, nil, hostsim.FunctionKey("default"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.invoke(t, "GetTrending", env).HTTPOutput("res")
	if err != nil || out.StatusCode != "200" {
		t.Fatalf("GetTrending: %v %+v\n%s", err, out, p.out)
	}
	var body struct {
		Window string
		Top    []struct {
			ProductID string
			Views     int
		}
	}
	if err := json.Unmarshal([]byte(out.Body), &body); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(body.Top); body.Window != "15m" || got != "[{p-1 3} {p-2 1}]" {
		t.Fatalf("GetTrending %s: top %s, want [{p-1 3} {p-2 1}]", out.Body, got)
	}
}

func TestTrendsEmbedded(t *testing.T) {
	p := start(t, "LOCAL_DATA_DIR="+t.TempDir())
	trendsFlow(t, p)
}

// TestTrendsAgainstCosmosStandin runs the trends functions on the Cosmos DB adapter (the npm
// stand-in over plain HTTP): every document type of pkg/trends and pkg/anomaly must pass the
// adapter's id and partition-key checks.
func TestTrendsAgainstCosmosStandin(t *testing.T) {
	cosmosEP := standins.Require(t, "STANDINS_COSMOS_HTTP_ENDPOINT")
	db := fmt.Sprintf("trends%d", time.Now().UnixNano())
	p := start(t, "LOCAL_DATA_DIR="+t.TempDir(),
		"CosmosDBConnection=AccountEndpoint="+cosmosEP+";AccountKey="+os.Getenv("STANDINS_COSMOS_KEY"),
		"COSMOS_DATABASE="+db, "COSMOS_CREATE_CONTAINERS=true")
	trendsFlow(t, p)
	if !strings.Contains(p.out.String(), `"cosmos":"azure`) {
		t.Fatalf("not running on the Cosmos DB adapter:\n%s", p.out)
	}
}
