// Package standins_test proves that the local stand-ins started by standins.sh answer the Azure SDKs
// the project uses: Azurite for azblob, cosmosdb-server for azcosmos, ehfake for the azeventhubs producer.
//
// Each test reads its endpoint from a STANDINS_* variable (printed by `standins.sh env`). Without it the
// test skips locally and fails when CI=true, because CI must run against the stand-ins.
package standins_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/contoso/eventpipeline/internal/standins"
)

// uniqueName gives each run its own container, database and partition key: the stand-ins are shared
// by every test package, and `go test ./...` runs packages in parallel.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAzuriteBlob(t *testing.T) {
	conn := standins.Require(t, "STANDINS_AZURITE_CONNECTION")
	ctx := testContext(t)

	client, err := azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	container := uniqueName(t, "standins-")
	if _, err := client.CreateContainer(ctx, container, nil); err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	t.Cleanup(func() {
		if _, err := client.DeleteContainer(context.Background(), container, nil); err != nil {
			t.Errorf("DeleteContainer: %v", err)
		}
	})

	want := []byte(`{"hello":"azurite"}`)
	if _, err := client.UploadBuffer(ctx, container, "dir/blob.json", want, &azblob.UploadBufferOptions{
		Metadata: map[string]*string{"origin": to.Ptr("standins_test")},
	}); err != nil {
		t.Fatalf("UploadBuffer: %v", err)
	}

	resp, err := client.DownloadStream(ctx, container, "dir/blob.json", nil)
	if err != nil {
		t.Fatalf("DownloadStream: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("downloaded %q, want %q", got, want)
	}
	if resp.ETag == nil || *resp.ETag == "" {
		t.Error("download has no ETag")
	}
}

func TestCosmosItems(t *testing.T) {
	endpoint := standins.Require(t, "STANDINS_COSMOS_ENDPOINT")
	key := standins.Require(t, "STANDINS_COSMOS_KEY")
	ctx := testContext(t)

	cred, err := azcosmos.NewKeyCredential(key)
	if err != nil {
		t.Fatal(err)
	}
	// Test only: the server's certificate is self-signed, has no SAN and expired in 2021.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	client, err := azcosmos.NewClientWithKey(endpoint, cred, &azcosmos.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: insecure},
	})
	if err != nil {
		t.Fatal(err)
	}

	dbName := uniqueName(t, "standins-")
	if _, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: dbName}, nil); err != nil {
		t.Fatalf("CreateDatabase: %v", err)
	}
	db, err := client.NewDatabase(dbName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Delete(context.Background(), nil); err != nil {
			t.Errorf("Database.Delete: %v", err)
		}
	})
	if _, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{
		ID:                     "recentlyViewed",
		PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/userId"}},
	}, nil); err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	container, err := db.NewContainer("recentlyViewed")
	if err != nil {
		t.Fatal(err)
	}

	type item struct {
		ID       string   `json:"id"`
		UserID   string   `json:"userId"`
		Products []string `json:"products"`
	}
	pk := azcosmos.NewPartitionKeyString("user-1")
	for _, products := range [][]string{{"p1"}, {"p2", "p1"}} { // insert, then replace
		body, err := json.Marshal(item{ID: "user-1", UserID: "user-1", Products: products})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := container.UpsertItem(ctx, pk, body, nil); err != nil {
			t.Fatalf("UpsertItem: %v", err)
		}
	}

	resp, err := container.ReadItem(ctx, pk, "user-1", nil)
	if err != nil {
		t.Fatalf("ReadItem: %v", err)
	}
	var got item
	if err := json.Unmarshal(resp.Value, &got); err != nil {
		t.Fatal(err)
	}
	if got.UserID != "user-1" || strings.Join(got.Products, ",") != "p2,p1" {
		t.Errorf("read back %+v, want userId user-1 and products [p2 p1]", got)
	}

	// The unpatched server answers 500 here (patch-cosmosdb-server.sh, fix 1).
	_, err = container.ReadItem(ctx, pk, "no-such-item", nil)
	var respErr *azcore.ResponseError
	if !errors.As(err, &respErr) || respErr.StatusCode != http.StatusNotFound {
		t.Errorf("ReadItem of a missing id: got %v, want a 404 ResponseError", err)
	}
}

// recordedEvent is one event as ehfake's GET /events reports it.
type recordedEvent struct {
	Hub          string         `json:"hub"`
	Partition    string         `json:"partition"`
	PartitionKey *string        `json:"partitionKey"`
	Body         string         `json:"body"`
	ContentType  *string        `json:"contentType"`
	Properties   map[string]any `json:"properties"`
}

// ehAdmin talks to ehfake's HTTP introspection port.
type ehAdmin struct{ base string }

func (a ehAdmin) do(t *testing.T, method, path string, query url.Values, out any) {
	t.Helper()
	req, err := http.NewRequest(method, a.base+path+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, body)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decoding the answer: %v", method, path, err)
		}
	}
}

// events returns what the fake recorded on hub from one test run (the "run" property of each event).
func (a ehAdmin) events(t *testing.T, hub, run string) []recordedEvent {
	t.Helper()
	var all []recordedEvent
	a.do(t, http.MethodGet, "/events", url.Values{"hub": {hub}}, &all)
	var mine []recordedEvent
	for _, e := range all {
		if e.Properties["run"] == run {
			mine = append(mine, e)
		}
	}
	return mine
}

// sendBatch sends bodies in one batch, each tagged with the run property.
func sendBatch(ctx context.Context, p *azeventhubs.ProducerClient, opts *azeventhubs.EventDataBatchOptions, run string, bodies ...string) error {
	batch, err := p.NewEventDataBatch(ctx, opts)
	if err != nil {
		return fmt.Errorf("NewEventDataBatch: %w", err)
	}
	for i, body := range bodies {
		if err := batch.AddEventData(&azeventhubs.EventData{
			Body:        []byte(body),
			ContentType: to.Ptr("application/json"),
			Properties:  map[string]any{"run": run, "seq": int64(i)},
		}, nil); err != nil {
			return fmt.Errorf("AddEventData: %w", err)
		}
	}
	if err := p.SendEventDataBatch(ctx, batch, nil); err != nil {
		return fmt.Errorf("SendEventDataBatch: %w", err)
	}
	return nil
}

func TestEventHubsProducer(t *testing.T) {
	conn := standins.Require(t, "STANDINS_EVENTHUBS_CONNECTION")
	admin := ehAdmin{base: strings.TrimRight(standins.Require(t, "STANDINS_EVENTHUBS_ADMIN"), "/")}
	ctx := testContext(t)
	const hub = "clickstream"

	newProducer := func(t *testing.T, hub string, retry azeventhubs.RetryOptions) *azeventhubs.ProducerClient {
		t.Helper()
		p, err := azeventhubs.NewProducerClientFromConnectionString(conn, hub, &azeventhubs.ProducerClientOptions{RetryOptions: retry})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		return p
	}
	producer := newProducer(t, hub, azeventhubs.RetryOptions{RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond})

	t.Run("properties", func(t *testing.T) {
		props, err := producer.GetEventHubProperties(ctx, nil)
		if err != nil {
			t.Fatalf("GetEventHubProperties: %v", err)
		}
		if props.Name != hub || strings.Join(props.PartitionIDs, ",") != "0,1,2,3" {
			t.Errorf("hub properties %+v, want name %s and partitions 0..3", props, hub)
		}
		if _, err := producer.GetPartitionProperties(ctx, "2", nil); err != nil {
			t.Errorf("GetPartitionProperties: %v", err)
		}
	})

	t.Run("batch with partition key", func(t *testing.T) {
		run, key := uniqueName(t, "run-"), uniqueName(t, "user-")
		bodies := []string{`{"n":0}`, `{"n":1}`, `{"n":2}`}
		if err := sendBatch(ctx, producer, &azeventhubs.EventDataBatchOptions{PartitionKey: to.Ptr(key)}, run, bodies...); err != nil {
			t.Fatal(err)
		}

		got := admin.events(t, hub, run)
		if len(got) != len(bodies) {
			t.Fatalf("the fake recorded %d events, want %d: %+v", len(got), len(bodies), got)
		}
		for i, e := range got {
			if e.Hub != hub || e.Partition != got[0].Partition {
				t.Errorf("event %d: hub %q partition %q, want %q and one partition for the key", i, e.Hub, e.Partition, hub)
			}
			if e.PartitionKey == nil || *e.PartitionKey != key {
				t.Errorf("event %d: partition key %v, want %s", i, e.PartitionKey, key)
			}
			if e.Body != bodies[i] {
				t.Errorf("event %d: body %q, want %q", i, e.Body, bodies[i])
			}
			if e.ContentType == nil || *e.ContentType != "application/json" {
				t.Errorf("event %d: content type %v, want application/json", i, e.ContentType)
			}
			if e.Properties["seq"] != float64(i) {
				t.Errorf("event %d: properties %v, want seq=%d", i, e.Properties, i)
			}
		}
	})

	t.Run("batch to a partition", func(t *testing.T) {
		run := uniqueName(t, "run-")
		if err := sendBatch(ctx, producer, &azeventhubs.EventDataBatchOptions{PartitionID: to.Ptr("2")}, run, `{}`); err != nil {
			t.Fatal(err)
		}
		got := admin.events(t, hub, run)
		if len(got) != 1 || got[0].Partition != "2" || got[0].PartitionKey != nil {
			t.Errorf("the fake recorded %+v, want one event on partition 2 without a partition key", got)
		}
		props, err := producer.GetPartitionProperties(ctx, "2", nil)
		if err != nil {
			t.Fatalf("GetPartitionProperties: %v", err)
		}
		if props.IsEmpty || props.LastEnqueuedSequenceNumber < 0 {
			t.Errorf("partition 2 after a send: %+v, want it not empty", props)
		}
	})

	// Both conditions are transient to the SDK: server-busy is retried on the same link, internal-error
	// makes it rebuild the connection first.
	for _, condition := range []string{"com.microsoft:server-busy", "amqp:internal-error"} {
		t.Run("retries "+condition, func(t *testing.T) {
			run, key := uniqueName(t, "run-"), uniqueName(t, "user-")
			admin.do(t, http.MethodPost, "/fail", url.Values{
				"count": {"1"}, "condition": {condition}, "hub": {hub}, "partitionKey": {key},
			}, nil)
			if err := sendBatch(ctx, producer, &azeventhubs.EventDataBatchOptions{PartitionKey: to.Ptr(key)}, run, `{}`); err != nil {
				t.Fatal(err)
			}
			if got := admin.events(t, hub, run); len(got) != 1 {
				t.Errorf("the fake recorded %d events after one injected failure, want 1", len(got))
			}
			var faults struct {
				Rules []struct{ PartitionKey *string } `json:"rules"`
			}
			admin.do(t, http.MethodGet, "/fail", nil, &faults)
			for _, r := range faults.Rules {
				if r.PartitionKey != nil && *r.PartitionKey == key {
					t.Errorf("the injected failure for key %s was never used", key)
				}
			}
		})
	}

	t.Run("failure without retries reaches the caller", func(t *testing.T) {
		noRetry := newProducer(t, hub, azeventhubs.RetryOptions{MaxRetries: -1})
		run, key := uniqueName(t, "run-"), uniqueName(t, "user-")
		admin.do(t, http.MethodPost, "/fail", url.Values{"count": {"1"}, "hub": {hub}, "partitionKey": {key}}, nil)
		err := sendBatch(ctx, noRetry, &azeventhubs.EventDataBatchOptions{PartitionKey: to.Ptr(key)}, run, `{}`)
		if err == nil || !strings.Contains(err.Error(), "com.microsoft:server-busy") {
			t.Errorf("send: got %v, want a com.microsoft:server-busy error", err)
		}
		if got := admin.events(t, hub, run); len(got) != 0 {
			t.Errorf("the fake recorded %d events for a rejected send", len(got))
		}
	})

	t.Run("unknown hub", func(t *testing.T) {
		other := newProducer(t, "no-such-hub", azeventhubs.RetryOptions{MaxRetries: -1})
		_, err := other.NewEventDataBatch(ctx, nil)
		if err == nil || !strings.Contains(err.Error(), "amqp:not-found") {
			t.Errorf("NewEventDataBatch on an unknown hub: got %v, want an amqp:not-found error", err)
		}
	})
}
