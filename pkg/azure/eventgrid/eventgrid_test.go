package eventgrid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// recorded is one request as the fake topic saw it.
type recorded struct {
	Method, Path, APIVersion, ContentType string
	SASKey, Authorization                 string
	Body                                  []byte
}

// topic is a fake Event Grid topic on an httptest TLS server (the SDK refuses plain HTTP). It
// answers with statuses in turn (200 when the list is used up) and records every request.
type topic struct {
	srv *httptest.Server

	mu       sync.Mutex
	statuses []int
	requests []recorded
}

func newTopic(t *testing.T, statuses ...int) *topic {
	t.Helper()
	tp := &topic{statuses: statuses}
	tp.srv = newTLSServer(tp)
	t.Cleanup(tp.srv.Close)
	return tp
}

func newTLSServer(tp *topic) *httptest.Server {
	return httptest.NewTLSServer(http.HandlerFunc(tp.serve))
}

func (tp *topic) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	tp.mu.Lock()
	tp.requests = append(tp.requests, recorded{
		Method: r.Method, Path: r.URL.Path, APIVersion: r.URL.Query().Get("api-version"),
		ContentType: r.Header.Get("Content-Type"), SASKey: r.Header.Get("aeg-sas-key"),
		Authorization: r.Header.Get("Authorization"), Body: body,
	})
	status := http.StatusOK
	if len(tp.statuses) > 0 {
		status, tp.statuses = tp.statuses[0], tp.statuses[1:]
	}
	tp.mu.Unlock()
	if status == http.StatusOK {
		w.WriteHeader(status)
		return
	}
	// The shape of Event Grid's error body: the SDK reads error.code into ResponseError.ErrorCode.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":"Code%d","message":"status %d from the fake topic"}}`, status, status)
}

func (tp *topic) seen() []recorded {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]recorded(nil), tp.requests...)
}

func (tp *topic) settings(key string) *settings.Topic {
	return &settings.Topic{Name: settings.AnalyticsTopic, Endpoint: tp.srv.URL + "/api/events", Key: key}
}

// options give one attempt per request and the test server's TLS client.
func (tp *topic) options() *Options {
	return &Options{ClientOptions: azcore.ClientOptions{
		Transport: tp.srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}
}

func newSender(t *testing.T, tp *topic, key string, opts *Options) *Sender {
	t.Helper()
	if opts == nil {
		opts = tp.options()
	}
	s, err := NewSender(tp.settings(key), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jsonEvent(t testing.TB, id string, data any) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource("/contoso/analytics")
	e.SetType("com.contoso.analytics.anomaly.detected")
	e.SetSubject("/traffic/site")
	e.SetTime(time.Date(2026, 11, 25, 10, 31, 0, 123456789, time.UTC))
	e.SetDataSchema("https://contoso.example/schemas/anomaly.json")
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	return e
}

// structured decodes one structured CloudEvent JSON into a generic value for comparison.
func structured(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	return m
}

func TestWireContractWithKey(t *testing.T) {
	tp := newTopic(t)
	s := newSender(t, tp, "the-key", nil)

	withExt := jsonEvent(t, "e1", map[string]any{"minute": "2026-11-25T10:31:00Z", "observed": 120, "direction": "spike"})
	withExt.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	withExt.SetExtension("partitionkey", "site")
	withExt.SetExtension("attempt", 2)
	withExt.SetExtension("replayed", true)
	text := event.New()
	text.SetID("e2")
	text.SetSource("/contoso/analytics")
	text.SetType("com.contoso.test.text")
	_ = text.SetData(event.TextPlain, "plain text")
	binary := event.New()
	binary.SetID("e3")
	binary.SetSource("/contoso/analytics")
	binary.SetType("com.contoso.test.binary")
	_ = binary.SetData("application/octet-stream", []byte{0, 1, 2, 0xff})
	noData := event.New()
	noData.SetID("e4")
	noData.SetSource("/contoso/analytics")
	noData.SetType("com.contoso.test.empty")
	events := []event.Event{withExt, text, binary, noData}

	if err := s.Send(context.Background(), events); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := tp.seen()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	want := recorded{Method: http.MethodPost, Path: "/api/events", APIVersion: "2018-01-01",
		ContentType: "application/cloudevents-batch+json; charset=utf-8", SASKey: "the-key"}
	if diff := cmp.Diff(want, r, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Body" }, cmp.Ignore())); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}

	var body []json.RawMessage
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("body is not a JSON array: %v\n%s", err, r.Body)
	}
	if len(body) != len(events) {
		t.Fatalf("body has %d events, want %d", len(body), len(events))
	}
	for i := range events {
		// The wire form is exactly sdk-go's structured form: what the JSON-lines twin writes.
		sdk, err := json.Marshal(events[i])
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(structured(t, sdk), structured(t, body[i])); diff != "" {
			t.Errorf("event %d: wire JSON differs from sdk-go's structured JSON (-sdk +wire):\n%s", i, diff)
		}
	}
	first := structured(t, body[0])
	if _, ok := first["data"].(map[string]any); !ok {
		t.Errorf(`event 0: "data" = %#v, want a JSON object`, first["data"])
	}
	if _, ok := first["data_base64"]; ok {
		t.Error("event 0: JSON data sent as data_base64")
	}
	if got := structured(t, body[2])["data_base64"]; got != "AAEC/w==" {
		t.Errorf("binary event: data_base64 = %v", got)
	}
	if got := structured(t, body[1])["data"]; got != "plain text" {
		t.Errorf("text event: data = %v", got)
	}
}

// fakeCredential stands in for the managed identity.
type fakeCredential struct {
	mu     sync.Mutex
	scopes []string
}

func (c *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scopes = append(c.scopes, o.Scopes...)
	return azcore.AccessToken{Token: "fake-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func TestWireContractWithIdentity(t *testing.T) {
	tp := newTopic(t)
	cred := &fakeCredential{}
	opts := tp.options()
	opts.Credential = cred
	s := newSender(t, tp, "", opts)
	if err := s.Send(context.Background(), []event.Event{jsonEvent(t, "e1", map[string]int{"n": 1})}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := tp.seen()[0]
	if r.Authorization != "Bearer fake-token" || r.SASKey != "" {
		t.Errorf("Authorization %q, aeg-sas-key %q; want the bearer token only", r.Authorization, r.SASKey)
	}
	if diff := cmp.Diff([]string{"https://eventgrid.azure.net/.default"}, cred.scopes); diff != "" {
		t.Errorf("token scopes (-want +got):\n%s", diff)
	}
}

func TestClassification(t *testing.T) {
	statuses := []int{200, 400, 401, 413, 429, 503, 403, 404, 408, 500, 409, 202}
	tp := newTopic(t, statuses...)
	s := newSender(t, tp, "k", nil)
	for i, status := range statuses {
		err := s.Send(context.Background(), []event.Event{jsonEvent(t, fmt.Sprintf("e%d", i), map[string]int{"n": i})})
		var want error
		switch {
		case status == 200:
		case status == 408, status == 429, status >= 500, status < 300:
			want = publish.ErrNotDelivered
		default:
			want = publish.ErrRejected
		}
		if want == nil {
			if err != nil {
				t.Errorf("status %d: %v, want delivered", status, err)
			}
			continue
		}
		if !errors.Is(err, want) || publish.Classify(err) != want {
			t.Errorf("status %d: err = %v, want %v", status, err, want)
			continue
		}
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != status || re.ErrorCode != fmt.Sprintf("Code%d", status) {
			t.Errorf("status %d: the azcore.ResponseError (status, code) is not kept: %v", status, err)
		}
		if d, f := publish.Progress(err, 1); d != 0 || f != 1 {
			t.Errorf("status %d: Progress = %d delivered, %d failed; want 0, 1", status, d, f)
		}
	}
	if got := len(tp.seen()); got != len(statuses) {
		t.Errorf("%d requests, want one per status (%d): retries are off in this test", got, len(statuses))
	}
}

func TestTransportErrorIsNotDelivered(t *testing.T) {
	tp := newTopic(t)
	s := newSender(t, tp, "k", nil)
	tp.srv.Close()
	err := s.Send(context.Background(), []event.Event{jsonEvent(t, "e1", map[string]int{"n": 1})})
	if publish.Classify(err) != publish.ErrNotDelivered || !errors.Is(err, publish.ErrNotDelivered) {
		t.Fatalf("err = %v, want ErrNotDelivered", err)
	}
}

func bigEvents(t testing.TB, n, dataBytes int) []event.Event {
	events := make([]event.Event, n)
	pad := strings.Repeat("x", dataBytes)
	for i := range events {
		events[i] = jsonEvent(t, fmt.Sprintf("big-%03d", i), map[string]any{"seq": i, "pad": pad})
	}
	return events
}

func TestSplitsWithinOneMegabyte(t *testing.T) {
	tp := newTopic(t)
	s := newSender(t, tp, "k", nil)
	events := bigEvents(t, 25, 100_000) // about 2.5 MB
	if err := s.Send(context.Background(), events); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := tp.seen()
	if len(reqs) < 3 {
		t.Fatalf("%d requests, want at least 3 for 2.5 MB", len(reqs))
	}
	var ids []string
	for i, r := range reqs {
		if len(r.Body) > MaxRequestBytes {
			t.Errorf("request %d: %d bytes, over %d", i, len(r.Body), MaxRequestBytes)
		}
		var body []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		for _, e := range body {
			ids = append(ids, e.ID)
		}
	}
	var want []string
	for i := range events {
		want = append(want, events[i].ID())
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("events across requests, in order (-want +got):\n%s", diff)
	}
}

func TestSplitFillsRequestsExactly(t *testing.T) {
	// Requests are filled up to the limit, measured on the bytes actually sent.
	tp := newTopic(t)
	events := bigEvents(t, 10, 1000)
	one, _ := json.Marshal(mustConvert(t, &events[0]))
	limit := 2 + 3*len(one) + 2 // room for three events and their commas, not four
	s := newSender(t, tp, "k", &Options{ClientOptions: tp.options().ClientOptions, MaxRequestBytes: limit})
	if err := s.Send(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, r := range tp.seen() {
		if len(r.Body) > limit {
			t.Errorf("request of %d bytes over the %d limit", len(r.Body), limit)
		}
		var body []json.RawMessage
		_ = json.Unmarshal(r.Body, &body)
		sizes = append(sizes, len(body))
	}
	if diff := cmp.Diff([]int{3, 3, 3, 1}, sizes); diff != "" {
		t.Errorf("events per request (-want +got):\n%s", diff)
	}
}

func TestMaxEventsPerRequest(t *testing.T) {
	tp := newTopic(t)
	s := newSender(t, tp, "k", &Options{ClientOptions: tp.options().ClientOptions, MaxEvents: 4})
	if err := s.Send(context.Background(), bigEvents(t, 10, 10)); err != nil {
		t.Fatal(err)
	}
	if got := len(tp.seen()); got != 3 {
		t.Errorf("%d requests for 10 events at 4 per request, want 3", got)
	}
}

func mustConvert(t *testing.T, e *event.Event) any {
	t.Helper()
	ce, err := ToCloudEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return ce
}

func TestOversizedEventRejectedWithoutSending(t *testing.T) {
	tp := newTopic(t)
	s := newSender(t, tp, "k", nil)
	events := []event.Event{
		jsonEvent(t, "small-1", map[string]int{"n": 1}),
		bigEvents(t, 1, MaxEventBytes)[0],
		jsonEvent(t, "small-2", map[string]int{"n": 2}),
	}
	err := s.Send(context.Background(), events)
	var pe *publish.PartialError
	if !errors.As(err, &pe) || pe.Delivered != 1 || pe.Failed != 1 || !errors.Is(err, publish.ErrRejected) {
		t.Fatalf("err = %v, want a PartialError: 1 delivered, then 1 rejected", err)
	}
	reqs := tp.seen()
	if len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), `"small-1"`) || strings.Contains(string(reqs[0].Body), "big-") {
		t.Fatalf("requests: %d; want only the event before the oversized one sent", len(reqs))
	}
}

func TestInvalidEventRejectedWithoutSending(t *testing.T) {
	tp := newTopic(t)
	s := newSender(t, tp, "k", nil)
	bad := jsonEvent(t, "bad", map[string]int{"n": 1})
	bad.SetType("")
	notJSON := jsonEvent(t, "notjson", nil)
	notJSON.DataEncoded = []byte("{oops")
	for _, e := range []event.Event{bad, notJSON} {
		err := s.Send(context.Background(), []event.Event{e})
		if publish.Classify(err) != publish.ErrRejected {
			t.Errorf("%s: err = %v, want ErrRejected", e.ID(), err)
		}
	}
	if n := len(tp.seen()); n != 0 {
		t.Errorf("%d requests sent for invalid events, want 0", n)
	}
}

func TestPartialFailureMidSplit(t *testing.T) {
	tp := newTopic(t, 200, 503)
	s := newSender(t, tp, "k", &Options{ClientOptions: tp.options().ClientOptions, MaxEvents: 2})
	err := s.Send(context.Background(), bigEvents(t, 6, 10))
	var pe *publish.PartialError
	if !errors.As(err, &pe) || pe.Delivered != 2 || pe.Failed != 2 || !errors.Is(err, publish.ErrNotDelivered) {
		t.Fatalf("err = %v, want 2 delivered then 2 not delivered", err)
	}
	if !strings.Contains(err.Error(), "2 event(s) delivered") {
		t.Errorf("error %q does not say how many were delivered", err)
	}
	if n := len(tp.seen()); n != 2 {
		t.Errorf("%d requests, want 2 (it stops at the first failure)", n)
	}
}

func TestRetriesTransientFailures(t *testing.T) {
	// With retries on (as in production, tiny delays here) the SDK retries 503 itself.
	tp := newTopic(t, 503, 503)
	opts := tp.options()
	opts.ClientOptions.Retry = policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}
	s := newSender(t, tp, "k", opts)
	if err := s.Send(context.Background(), []event.Event{jsonEvent(t, "e1", map[string]int{"n": 1})}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := len(tp.seen()); n != 3 {
		t.Errorf("%d attempts, want 3 (two 503s, then 200)", n)
	}
}

func TestNewSenderNeedsEndpoint(t *testing.T) {
	if _, err := NewSender(nil, nil); err == nil {
		t.Error("NewSender(nil) succeeded")
	}
	if _, err := NewSender(&settings.Topic{Name: "x"}, nil); err == nil {
		t.Error("NewSender without endpoint succeeded")
	}
	// Without a key: a managed identity (nothing is requested until the first Send).
	if _, err := NewSender(&settings.Topic{Name: "x", Endpoint: "https://t.westeurope-1.eventgrid.azure.net/api/events", ClientID: "00000000-0000-0000-0000-000000000001"}, nil); err != nil {
		t.Errorf("NewSender with a managed identity: %v", err)
	}
}

func TestCountRequests(t *testing.T) {
	for _, tt := range []struct {
		events []event.Event
		want   int
	}{
		{nil, 0},
		{bigEvents(t, 3, 10), 1},
		{bigEvents(t, 25, 100_000), 3},
		{bigEvents(t, MaxEvents+1, 10), 2},
	} {
		got, err := CountRequests(tt.events)
		if err != nil || got != tt.want {
			t.Errorf("CountRequests(%d events) = %d, %v; want %d", len(tt.events), got, err, tt.want)
		}
	}
	if _, err := CountRequests(bigEvents(t, 1, MaxEventBytes)); publish.Classify(err) != publish.ErrRejected {
		t.Errorf("oversized event: %v, want ErrRejected", err)
	}
}

// FuzzToCloudEvent checks, for any data, content type and extension value, that the converted event
// either is refused or encodes to the same structured JSON sdk-go writes.
func FuzzToCloudEvent(f *testing.F) {
	f.Add([]byte(`{"a":1}`), "application/json", false, "ext")
	f.Add([]byte("plain"), "text/plain", false, "")
	f.Add([]byte{0, 1, 2}, "application/octet-stream", true, "x")
	f.Add([]byte(` [1, 2 ,3] `), "", false, "")
	f.Add([]byte(`"<&>"`), "application/json; charset=utf-8", false, "<tag>")
	f.Fuzz(func(t *testing.T, data []byte, contentType string, base64 bool, ext string) {
		e := event.New()
		e.SetID("id")
		e.SetSource("/fuzz")
		e.SetType("fuzz")
		e.SetDataContentType(contentType)
		e.DataEncoded = data
		e.DataBase64 = base64
		if ext != "" {
			e.SetExtension("fuzzext", ext)
		}
		ce, err := ToCloudEvent(&e)
		if err != nil {
			return
		}
		got, err := ce.MarshalJSON()
		if err != nil {
			return // e.g. text data that is not UTF-8 cannot be a JSON string: refused at send
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Skip("sdk-go cannot encode it either")
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("converted event is not JSON: %v\n%s", err, got)
		}
		if json.Unmarshal(want, &w) != nil {
			t.Skip("sdk-go writes invalid JSON for it")
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Fatalf("converted JSON differs from sdk-go's (-sdk +converted):\n%s", diff)
		}
	})
}
