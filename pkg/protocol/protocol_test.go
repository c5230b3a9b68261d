package protocol_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/protocol"
)

func load(t *testing.T, name string) *protocol.Request {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	req, err := protocol.DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestDecodeString(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`"\"stringTest\""`, "stringTest"}, // the host's double encoding
		{`"\"{\\\"a\\\":1}\""`, `{"a":1}`}, // JSON text inside
		{`"plain"`, "plain"},               // encoded once (docs, old hosts)
		{`"\"4294967296\""`, "4294967296"}, // Offset metadata
		{`"null"`, "null"},                 // null arrives as the 4-character string
	}
	for _, tt := range tests {
		got, err := protocol.DecodeString(json.RawMessage(tt.raw))
		if err != nil || got != tt.want {
			t.Errorf("DecodeString(%s) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
	if _, err := protocol.DecodeString(json.RawMessage(`{}`)); !errors.Is(err, protocol.ErrMalformed) {
		t.Errorf("object: err = %v, want ErrMalformed", err)
	}
}

func TestMetadataScalars(t *testing.T) {
	req := load(t, "eventhub-one.json")
	seq, ok, err := req.MetadataInt("SequenceNumber")
	if err != nil || !ok || seq != 1001 {
		t.Fatalf("SequenceNumber = %d %v %v", seq, ok, err)
	}
	off, _, _ := req.MetadataString("Offset")
	if off != "4294967296" {
		t.Fatalf("Offset = %q", off)
	}
	et, _, _ := req.MetadataString("EnqueuedTimeUtc")
	tm, err := protocol.ParseHostTime(et)
	if err != nil || !tm.Equal(time.Date(2024, 10, 24, 21, 32, 17, 0, time.UTC)) {
		t.Fatalf("EnqueuedTimeUtc %q -> %v %v", et, tm, err)
	}
	if _, ok, _ := req.MetadataString("PartitionKey"); ok {
		t.Fatal("absent PartitionKey reported present")
	}
}

func TestDecodeEventHubBatchObjects(t *testing.T) {
	// Without dataType the host sends the parsed bodies; the element text is the body.
	req := load(t, "eventhub-many.json")
	b, err := protocol.DecodeEventHubBatch(req, "events", false)
	if err != nil {
		t.Fatal(err)
	}
	if b.Partition.PartitionID != "3" || b.Partition.EventHubName != "telemetry" || b.Partition.ConsumerGroup != "$Default" {
		t.Fatalf("partition = %+v", b.Partition)
	}
	if len(b.Events) != 2 {
		t.Fatalf("%d events", len(b.Events))
	}
	e := b.Events[1]
	if string(e.Body) != `{"deviceId":"dev-02","temperature":19.0,"seq":2}` || e.SequenceNumber != 1002 || e.Offset != "4294967664" {
		t.Fatalf("event 1 = %s seq %d off %s", e.Body, e.SequenceNumber, e.Offset)
	}
	if !e.EnqueuedTime.Equal(time.Date(2024, 10, 24, 21, 32, 17, 456e6, time.UTC)) {
		t.Fatalf("enqueued = %v", e.EnqueuedTime)
	}
	p, err := b.Events[0].Properties()
	if err != nil || p["source"] != "gateway-7" {
		t.Fatalf("properties = %v %v", p, err)
	}
}

func TestDecodeEventHubBatchStrings(t *testing.T) {
	// dataType string: a string holding an array of strings, each the exact body text (not JSON too).
	body := `{"Data":{"events":"[\"{\\\"a\\\": 1}\",\"not json at all\"]"},"Metadata":{"PartitionContext":{"PartitionId":"0"},"SequenceNumberArray":"[5,6]","EnqueuedTimeUtcArray":"[\"2026-11-25T10:00:00.5\",\"2026-11-25T10:00:01\"]","PartitionKeyArray":"[\"k\",null]"}}`
	req, err := protocol.DecodeRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	b, err := protocol.DecodeEventHubBatch(req, "events", false)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{string(b.Events[0].Body), string(b.Events[1].Body)}
	if diff := cmp.Diff([]string{`{"a": 1}`, "not json at all"}, got); diff != "" {
		t.Fatal(diff)
	}
	if b.Events[0].PartitionKey != "k" || b.Events[1].PartitionKey != "" || b.Events[1].SequenceNumber != 6 {
		t.Fatalf("metadata: %+v", b.Events)
	}
}

func TestDecodeEventHubBatchRejectsMismatchedMetadata(t *testing.T) {
	body := `{"Data":{"events":"[\"a\",\"b\"]"},"Metadata":{"SequenceNumberArray":"[5]"}}`
	req, _ := protocol.DecodeRequest([]byte(body))
	if _, err := protocol.DecodeEventHubBatch(req, "events", false); !errors.Is(err, protocol.ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

func TestDecodeCosmosDocuments(t *testing.T) {
	req := load(t, "cosmos-products.json")
	docs, err := protocol.DecodeCosmosDocuments(req, "documents")
	if err != nil {
		t.Fatal(err)
	}
	var d []struct {
		ID    string  `json:"id"`
		Price float64 `json:"price"`
		ETag  string  `json:"_etag"`
	}
	for _, raw := range docs {
		var x struct {
			ID    string  `json:"id"`
			Price float64 `json:"price"`
			ETag  string  `json:"_etag"`
		}
		if err := json.Unmarshal(raw, &x); err != nil {
			t.Fatal(err)
		}
		d = append(d, x)
	}
	if len(d) != 2 || d[0].ID != "p-100" || d[0].Price != 19.99 || d[1].ETag != `"0b00f2c2-0000-0d00-0000-671abf120000"` {
		t.Fatalf("docs = %+v", d)
	}
}

func TestDecodeTimer(t *testing.T) {
	req := load(t, "timer.json")
	ti, err := protocol.DecodeTimer(req, "myTimer")
	if err != nil {
		t.Fatal(err)
	}
	if ti.IsPastDue || !ti.Schedule.AdjustForDST || !ti.LastRun().Equal(time.Date(2024, 10, 24, 21, 30, 0, 1912500, time.UTC)) {
		t.Fatalf("timer = %+v last %v", ti, ti.LastRun())
	}
}

func TestHTTPRequestRoundTrip(t *testing.T) {
	req := load(t, "http-nonforwarded.json")
	hr, err := protocol.DecodeHTTPRequest(req, "req")
	if err != nil {
		t.Fatal(err)
	}
	r, err := hr.NewHTTPRequest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	if r.Method != "POST" || r.URL.Path != "/api/orders/42" || r.URL.Query().Get("expand") != "lines" ||
		r.PathValue("id") != "42" || r.Header.Get("X-Forwarded-Proto") != "https" || string(b) != `{"sku":"HAMMER-01","qty":2}` {
		t.Fatalf("request: %s %s q=%v id=%q body=%s", r.Method, r.URL, r.URL.Query(), r.PathValue("id"), b)
	}
	ids := protocol.Identities(r.Context())
	if len(ids) != 1 || ids[0].Claims[2].Type != protocol.ClaimKeyID || ids[0].Claims[2].Value != "default" {
		t.Fatalf("identities = %+v", ids)
	}
}

func TestRetryContext(t *testing.T) {
	var nilRC *protocol.RetryContext
	tests := []struct {
		rc   *protocol.RetryContext
		last bool
	}{
		{nilRC, true},
		{&protocol.RetryContext{RetryCount: 0, MaxRetryCount: 3}, false},
		{&protocol.RetryContext{RetryCount: 3, MaxRetryCount: 3}, true},
		{&protocol.RetryContext{RetryCount: 9, MaxRetryCount: -1}, false},
	}
	for _, tt := range tests {
		if got := tt.rc.LastAttempt(); got != tt.last {
			t.Errorf("%+v LastAttempt = %v", tt.rc, got)
		}
	}
	req, _ := protocol.DecodeRequest([]byte(`{"Data":{},"Metadata":{"RetryContext":{"RetryCount":2,"MaxRetryCount":5,"Exception":null,"Instance":null,"State":{}}}}`))
	rc, err := req.Retry()
	if err != nil || rc.RetryCount != 2 || rc.MaxRetryCount != 5 {
		t.Fatalf("Retry = %+v, %v", rc, err)
	}
}

func post(t *testing.T, h http.Handler, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, io.NopCloser(strings.NewReader(body)))
	r.ContentLength = -1 // chunked, as the host sends it
	r.Header.Set(protocol.HeaderInvocationID, "inv-1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerReplies(t *testing.T) {
	tests := []struct {
		name       string
		f          protocol.Func
		body       string
		wantStatus int
		check      func(t *testing.T, body string)
	}{
		{"nil response is an empty object", func(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
			return nil, nil
		}, `{"Data":{}}`, 200, func(t *testing.T, body string) {
			if body != `{"Outputs":{},"Logs":[],"ReturnValue":null}` {
				t.Errorf("body = %s", body)
			}
		}},
		{"logs carry the invocation's lines", func(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
			inv.Log.Info("processed", "n", 2)
			inv.Log.Debug("not in logs")
			return &protocol.Response{Outputs: map[string]any{"out": []string{"x"}}}, nil
		}, `{"Data":{}}`, 200, func(t *testing.T, body string) {
			if body != `{"Outputs":{"out":["x"]},"Logs":["INFO processed n=2"],"ReturnValue":null}` {
				t.Errorf("body = %s", body)
			}
		}},
		{"error fails the invocation", func(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
			return nil, errors.New("store down")
		}, `{"Data":{}}`, 500, nil},
		{"panic fails the invocation, not the process", func(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
			panic("boom")
		}, `{"Data":{}}`, 500, nil},
		{"malformed envelope", func(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
			return nil, nil
		}, `not json`, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := post(t, protocol.Handler("Fn", tt.f), "/Fn", tt.body)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
			var obj map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &obj); err != nil || obj == nil {
				t.Fatalf("reply is not a JSON object: %s", w.Body)
			}
			if tt.check != nil {
				tt.check(t, strings.TrimSpace(w.Body.String()))
			}
		})
	}
}

func TestHTTPEnvelope(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "42" {
			w.WriteHeader(500)
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"title":"slow down"}`)
	})
	b, _ := os.ReadFile("testdata/http-nonforwarded.json")
	w := post(t, protocol.HTTPEnvelope("Orders", "req", "res", h), "/Orders", string(b))
	if w.Code != 200 {
		t.Fatalf("host status %d (a caller 4xx must not fail the invocation)", w.Code)
	}
	var resp struct {
		Outputs struct {
			Res protocol.HTTPResponse `json:"res"`
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	want := protocol.HTTPResponse{StatusCode: "429", Headers: map[string]string{"Content-Type": "application/problem+json", "Retry-After": "3"}, Body: `{"title":"slow down"}`}
	if diff := cmp.Diff(want, resp.Outputs.Res); diff != "" {
		t.Fatalf("res (-want +got):\n%s", diff)
	}
	// statusCode must be a JSON string on the wire.
	if !strings.Contains(w.Body.String(), `"statusCode":"429"`) {
		t.Fatalf("statusCode not a string: %s", w.Body)
	}
}

// TestDecodedBodiesOutliveScratchBuffers: bodies must not point into buffers reused by later decodes.
func TestDecodedBodiesOutliveScratchBuffers(t *testing.T) {
	first, err := protocol.DecodeEventHubBatch(load(t, "eventhub-many.json"), "events", false)
	if err != nil {
		t.Fatal(err)
	}
	want := string(first.Events[0].Body)
	for range 5 {
		other := `{"Data":{"events":"[{\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\":1}]"},"Metadata":{"SequenceNumberArray":"[1]"}}`
		req, _ := protocol.DecodeRequest([]byte(other))
		if _, err := protocol.DecodeEventHubBatch(req, "events", false); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(first.Events[0].Body); got != want {
		t.Fatalf("first batch's body changed to %q", got)
	}
}

func TestPropertiesMatchEncodingJSON(t *testing.T) {
	props := `{"cloudEvents:id":"e\u00e91","n":3,"f":1.5,"b":true,"nil":null,"obj":{"a":[1]},"q\"k":"v"}`
	body := `{"Data":{"events":"[\"x\"]"},"Metadata":{"PropertiesArray":` + strconv.Quote("["+props+"]") + `}}`
	req, err := protocol.DecodeRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	b, err := protocol.DecodeEventHubBatch(req, "events", false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Events[0].Properties()
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	json.Unmarshal([]byte(props), &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Properties (-encoding/json +got):\n%s", diff)
	}
}
