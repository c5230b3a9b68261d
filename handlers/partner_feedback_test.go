package handlers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/feedback"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/publish"
)

// secret is in every comment the tests send: it must never reach a log line or the host's Logs.
const secret = "SECRET-COMMENT-7f3a"

var feedbackNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// hubSender is the test's event hub: it records what was published and fails while err is set.
type hubSender struct {
	mu    sync.Mutex
	sends [][]event.Event
	err   error
}

func (h *hubSender) Send(ctx context.Context, evs []event.Event) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return h.err
	}
	h.sends = append(h.sends, append([]event.Event(nil), evs...))
	return nil
}

func (h *hubSender) events() []event.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var all []event.Event
	for _, s := range h.sends {
		all = append(all, s...)
	}
	return all
}

// syncBuffer is a log sink shared by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type feedbackEnv struct {
	t    *testing.T
	hub  *hubSender
	logs *syncBuffer
	host *hostsim.Client
	// hostLogs collects the Logs of every reply, which the host writes to Application Insights.
	hostLogs []string
}

func newFeedbackEnv(t *testing.T, ratePerMinute int) *feedbackEnv {
	t.Helper()
	db, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := embedded.NewCollection[feedback.Record](db, "idempotency")
	if err != nil {
		t.Fatal(err)
	}
	e := &feedbackEnv{t: t, hub: &hubSender{}, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := 0
	d := handlers.Deps{
		Log: log,
		Now: func() time.Time { return feedbackNow },
		Feedback: &feedback.Service{Sender: e.hub, Keys: keys, Log: log, Now: func() time.Time { return feedbackNow },
			NewID: func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }},
		Partners: feedback.Partners{Principals: map[string]string{"11111111-aaaa-bbbb-cccc-000000000001": "acme"}},
	}
	if ratePerMinute > 0 {
		d.FeedbackLimit = feedback.NewLimiter(ratePerMinute)
	}
	srv := httptest.NewServer(handlers.New(d))
	t.Cleanup(srv.Close)
	e.host = &hostsim.Client{BaseURL: srv.URL}
	t.Cleanup(func() {
		for where, text := range map[string]string{"handler log": e.logs.String(), "reply Logs": strings.Join(e.hostLogs, "\n")} {
			if strings.Contains(text, secret) {
				t.Errorf("comment text reached the %s:\n%s", where, text)
			}
		}
	})
	return e
}

// req is one call of the partner API.
type req struct {
	contentType string
	headers     map[string]string
	body        string
	ids         []protocol.Identity
}

type reply struct {
	status  int
	headers map[string]string
	body    string
}

var acmeKey = hostsim.FunctionKey("partner-acme")

// post sends r through the host's envelope, as the Functions host would, and returns the caller's
// answer from Outputs.res.
func (e *feedbackEnv) post(r req) reply {
	e.t.Helper()
	hr := httptest.NewRequest(http.MethodPost, "https://contoso-fn.azurewebsites.net/api/feedback", strings.NewReader(r.body))
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	env, err := hostsim.HTTP(handlers.FnPartnerFeedback, "req", hr, nil, r.ids)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.host.Invoke(context.Background(), handlers.FnPartnerFeedback, env)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.Status != http.StatusOK || !strings.HasPrefix(res.ContentType, "application/json") {
		e.t.Fatalf("the host got %d %s: %s", res.Status, res.ContentType, res.Raw)
	}
	e.hostLogs = append(e.hostLogs, res.Response.Logs...)
	out, err := res.HTTPOutput("res")
	if err != nil {
		e.t.Fatal(err)
	}
	status, err := strconv.Atoi(out.StatusCode)
	if err != nil {
		e.t.Fatalf("statusCode %q", out.StatusCode)
	}
	return reply{status: status, headers: out.Headers, body: out.Body}
}

// problem decodes an error answer, checking it is application/problem+json with the same status.
func (rp reply) problem(t *testing.T) handlers.Problem {
	t.Helper()
	if ct := rp.headers["Content-Type"]; ct != "application/problem+json" {
		t.Fatalf("%d answer has Content-Type %q, want application/problem+json: %s", rp.status, ct, rp.body)
	}
	var p handlers.Problem
	if err := json.Unmarshal([]byte(rp.body), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != rp.status || p.Type == "" || p.Title == "" {
		t.Fatalf("problem %+v for status %d", p, rp.status)
	}
	return p
}

func (rp reply) accepted(t *testing.T) []string {
	t.Helper()
	if rp.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", rp.status, rp.body)
	}
	var a struct {
		Accepted []struct {
			ID string `json:"id"`
		} `json:"accepted"`
	}
	if err := json.Unmarshal([]byte(rp.body), &a); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(a.Accepted))
	for i, x := range a.Accepted {
		ids[i] = x.ID
	}
	return ids
}

func productJSON(productID string, rating int) string {
	return fmt.Sprintf(`{"kind":"product","productId":%q,"rating":%d,"comment":"%s: solid"}`, productID, rating, secret)
}

func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/feedback/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPartnerFeedbackStatuses(t *testing.T) {
	e := newFeedbackEnv(t, 0)
	tests := []struct {
		name   string
		req    req
		status int
		ptype  string // problem type suffix
	}{
		{"no identity", req{contentType: "application/json", body: productJSON("p-1", 5)}, 401, "unauthenticated"},
		// An identity the host did not authenticate proves nothing, whatever key name it carries.
		{"unauthenticated identity with a partner key name", req{contentType: "application/json", body: productJSON("p-1", 5),
			ids: []protocol.Identity{{AuthenticationType: "WebJobsAuthLevel", IsAuthenticated: false,
				Claims: []protocol.Claim{{Type: protocol.ClaimKeyID, Value: "partner-acme"}}}}}, 401, "unauthenticated"},
		{"default key", req{contentType: "application/json", body: productJSON("p-1", 5), ids: hostsim.FunctionKey("default")}, 403, "not-a-partner"},
		{"master key", req{contentType: "application/json", body: productJSON("p-1", 5), ids: hostsim.FunctionKey("master")}, 403, "not-a-partner"},
		{"another partner in the body", req{contentType: "application/json", ids: acmeKey,
			body: `{"kind":"product","productId":"p-1","partnerId":"globex"}`}, 403, "partner-mismatch"},
		{"another partner as source", req{contentType: "application/cloudevents+json", ids: acmeKey,
			body: `{"specversion":"1.0","id":"x1","source":"/partners/globex","type":"com.contoso.feedback.product.submitted","data":{"productId":"p-1"}}`}, 403, "partner-mismatch"},
		{"malformed JSON", req{contentType: "application/json", ids: acmeKey, body: `{"kind":"product","comment":"` + secret + `"`}, 400, "malformed-json"},
		{"empty body", req{contentType: "application/json", ids: acmeKey}, 400, "malformed-json"},
		{"over 256 KB", req{contentType: "application/json", ids: acmeKey,
			body: `{"kind":"product","productId":"p","comment":"` + strings.Repeat("x", handlers.MaxFeedbackBody) + `"}`}, 413, "too-large"},
		{"text/plain", req{contentType: "text/plain", ids: acmeKey, body: productJSON("p-1", 5)}, 415, "unsupported-media-type"},
		{"no content type", req{ids: acmeKey, body: productJSON("p-1", 5)}, 415, "unsupported-media-type"},
		{"latin-1 JSON", req{contentType: "application/json; charset=iso-8859-1", ids: acmeKey, body: productJSON("p-1", 5)}, 415, "unsupported-media-type"},
		{"binary mode with a text body", req{contentType: "text/plain", ids: acmeKey, body: "hello",
			headers: map[string]string{"ce-specversion": "1.0", "ce-id": "b", "ce-source": "/s", "ce-type": feedback.TypeProductSubmitted}}, 415, "unsupported-media-type"},
		{"invalid fields", req{contentType: "application/json", ids: acmeKey, body: `{"kind":"product","rating":0}`}, 422, "invalid-feedback"},
		{"plain JSON", req{contentType: "application/json", ids: acmeKey, body: productJSON("p-1", 5)}, 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := e.post(tt.req)
			if rp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", rp.status, tt.status, rp.body)
			}
			if tt.status == 202 {
				rp.accepted(t)
				return
			}
			p := rp.problem(t)
			if !strings.HasSuffix(p.Type, "/"+tt.ptype) {
				t.Errorf("problem type %q, want .../%s", p.Type, tt.ptype)
			}
			if strings.Contains(rp.body, secret) {
				t.Errorf("the error echoes the comment: %s", rp.body)
			}
			if tt.status == 401 && rp.headers["Www-Authenticate"] == "" {
				t.Errorf("401 without WWW-Authenticate: %v", rp.headers)
			}
		})
	}
	if n := len(e.hub.events()); n != 1 {
		t.Errorf("published %d events, want 1 (only the accepted request)", n)
	}
}

func TestPartnerFeedbackListsEveryFieldError(t *testing.T) {
	e := newFeedbackEnv(t, 0)
	body := `{"kind":"product","rating":9,"title":"` + strings.Repeat("t", 201) + `","comment":"` + strings.Repeat(secret, 300) +
		`","locale":"not a tag","submittedAt":"soon","extra":1}`
	rp := e.post(req{contentType: "application/json", ids: acmeKey, body: body, headers: map[string]string{"Idempotency-Key": "k\x7f"}})
	if rp.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d: %s", rp.status, rp.body)
	}
	p := rp.problem(t)
	want := []handlers.FieldError{
		{Field: "Idempotency-Key", Message: "must be valid UTF-8 text without control characters"},
		{Field: "submittedAt", Message: "must be an RFC 3339 timestamp such as 2026-11-25T12:00:00Z"},
		{Field: "extra", Message: "is not a feedback field (known: kind, partnerId, productId, orderId, customerRef, rating, title, comment, locale, submittedAt)"},
		{Field: "productId", Message: "is required for product feedback"},
		{Field: "rating", Message: "must be an integer from 1 to 5"},
		{Field: "title", Message: "must be at most 200 characters (got 201)"},
		{Field: "comment", Message: fmt.Sprintf("must be at most 4000 characters (got %d)", 300*len(secret))},
		{Field: "locale", Message: "must be a BCP 47 language tag such as en-GB"},
	}
	if diff := cmp.Diff(want, p.Errors); diff != "" {
		t.Errorf("field errors (-want +got):\n%s", diff)
	}
	if p.Detail != "8 fields are invalid" {
		t.Errorf("detail %q", p.Detail)
	}
}

func TestPartnerFeedbackContentTypes(t *testing.T) {
	e := newFeedbackEnv(t, 0)
	at := "2026-11-25T11:59:00Z"
	tests := []struct {
		name     string
		req      req
		wantIDs  []string
		subjects []string
		types    []string
	}{
		{"plain JSON with Idempotency-Key", req{contentType: "application/json; charset=utf-8", ids: acmeKey,
			body: productJSON("p-1", 4), headers: map[string]string{"Idempotency-Key": "review-1"}},
			[]string{feedback.EventID("acme", "review-1")}, []string{"/products/p-1"}, []string{feedback.TypeProductSubmitted}},
		{"plain JSON without a key", req{contentType: "application/json", ids: acmeKey,
			body: `{"kind":"customer","customerRef":"c-9","comment":"` + secret + `"}`},
			[]string{"00000000-0000-4000-8000-000000000001"}, []string{"/customers/c-9"}, []string{feedback.TypeCustomerSubmitted}},
		{"structured CloudEvent", req{contentType: "application/cloudevents+json", ids: acmeKey, body: testdata(t, "structured.json")},
			[]string{feedback.EventID("acme", "fb-2026-0001")}, []string{"/orders/o-42"}, []string{feedback.TypeCustomerSubmitted}},
		{"binary-mode CloudEvent", req{contentType: "application/json", ids: acmeKey, body: `{"productId":"p-7","rating":3,"comment":"` + secret + `"}`,
			headers: map[string]string{"ce-specversion": "1.0", "ce-id": "bin%201", "ce-source": "/partners/acme", "ce-type": feedback.TypeProductSubmitted, "ce-time": at}},
			[]string{feedback.EventID("acme", "bin 1")}, []string{"/products/p-7"}, []string{feedback.TypeProductSubmitted}},
		{"batch", req{contentType: "application/cloudevents-batch+json", ids: acmeKey, body: testdata(t, "batch.json")},
			[]string{feedback.EventID("acme", "fb-b-1"), feedback.EventID("acme", "fb-b-2"), feedback.EventID("acme", "fb-b-3")},
			[]string{"/products/p-100", "/customers/c-7", "/products/p-200"},
			[]string{feedback.TypeProductSubmitted, feedback.TypeCustomerSubmitted, feedback.TypeProductSubmitted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.hub.sends)
			ids := e.post(tt.req).accepted(t)
			if diff := cmp.Diff(tt.wantIDs, ids); diff != "" {
				t.Fatalf("accepted ids (-want +got):\n%s", diff)
			}
			if len(e.hub.sends) != before+1 {
				t.Fatalf("%d sends for one request, want 1 (all or nothing)", len(e.hub.sends)-before)
			}
			sent := e.hub.sends[before]
			for i, ev := range sent {
				if ev.ID() != ids[i] || ev.Subject() != tt.subjects[i] || ev.Type() != tt.types[i] || ev.Source() != "/partners/acme" ||
					ev.Extensions()[feedback.PartitionKeyExtension] != tt.subjects[i] {
					t.Errorf("event %d: id %s type %s source %s subject %s key %v", i, ev.ID(), ev.Type(), ev.Source(), ev.Subject(), ev.Extensions()[feedback.PartitionKeyExtension])
				}
				var data feedback.Feedback
				if err := ev.DataAs(&data); err != nil || data.PartnerID != "acme" {
					t.Errorf("event %d data: %+v %v", i, data, err)
				}
			}
		})
	}
}

func TestPartnerFeedbackIdempotentReplay(t *testing.T) {
	e := newFeedbackEnv(t, 0)
	for _, r := range []req{
		{contentType: "application/json", ids: acmeKey, body: productJSON("p-1", 5), headers: map[string]string{"Idempotency-Key": "same"}},
		{contentType: "application/cloudevents+json", ids: acmeKey, body: testdata(t, "structured.json")},
		{contentType: "application/cloudevents-batch+json", ids: acmeKey, body: testdata(t, "batch.json")},
	} {
		before := len(e.hub.events())
		first := e.post(r)
		again := e.post(r)
		first.accepted(t)
		if first.body != again.body || again.status != first.status {
			t.Fatalf("replay answered %d %s, first %d %s", again.status, again.body, first.status, first.body)
		}
		if again.headers["Idempotent-Replayed"] != "true" || first.headers["Idempotent-Replayed"] != "" {
			t.Errorf("Idempotent-Replayed: first %q, replay %q", first.headers["Idempotent-Replayed"], again.headers["Idempotent-Replayed"])
		}
		if got, want := len(e.hub.events())-before, len(first.accepted(t)); got != want {
			t.Fatalf("published %d events for two identical requests, want %d", got, want)
		}
	}
	// The same key for different feedback is a conflict, not a silent replay.
	rp := e.post(req{contentType: "application/json", ids: acmeKey, body: productJSON("p-1", 1), headers: map[string]string{"Idempotency-Key": "same"}})
	if rp.status != http.StatusConflict || !strings.HasSuffix(rp.problem(t).Type, "/idempotency-key-reused") {
		t.Fatalf("reused key: %d %s", rp.status, rp.body)
	}
}

func TestPartnerFeedbackHubDown(t *testing.T) {
	e := newFeedbackEnv(t, 0)
	r := req{contentType: "application/cloudevents-batch+json", ids: acmeKey, body: testdata(t, "batch.json")}
	e.hub.err = fmt.Errorf("eventhubs.Send(feedback): %w: server busy", publish.ErrNotDelivered)
	rp := e.post(r)
	if rp.status != http.StatusServiceUnavailable || rp.headers["Retry-After"] == "" {
		t.Fatalf("hub down: %d %v %s", rp.status, rp.headers, rp.body)
	}
	rp.problem(t)
	// Nothing half-written: the retry is not "in progress" nor a replay; it publishes every event once.
	e.hub.err = nil
	ids := e.post(r).accepted(t)
	if n := len(e.hub.events()); n != len(ids) || n != 3 {
		t.Fatalf("after recovery %d events published for %d accepted", n, len(ids))
	}
	e.hub.err = fmt.Errorf("eventhubs.Send(feedback): %w: amqp:not-found", publish.ErrRejected)
	rp = e.post(req{contentType: "application/json", ids: acmeKey, body: productJSON("p-2", 2)})
	if rp.status != http.StatusServiceUnavailable {
		t.Fatalf("hub refusing: %d %s", rp.status, rp.body)
	}
}

func TestPartnerFeedbackRateLimit(t *testing.T) {
	e := newFeedbackEnv(t, 6) // bursts of 1, one every 10 s
	r := req{contentType: "application/json", ids: acmeKey, body: productJSON("p-1", 5)}
	e.post(r).accepted(t)
	rp := e.post(r)
	if rp.status != http.StatusTooManyRequests || rp.headers["Retry-After"] != "10" {
		t.Fatalf("second request: %d Retry-After %q: %s", rp.status, rp.headers["Retry-After"], rp.body)
	}
	rp.problem(t)
	// Another partner has its own bucket.
	e.post(req{contentType: "application/json", ids: hostsim.FunctionKey("partner-globex"), body: productJSON("p-1", 5)}).accepted(t)
}

func TestPartnerFeedbackEntraCaller(t *testing.T) {
	e := newFeedbackEnv(t, 0)
	principal := base64.StdEncoding.EncodeToString([]byte(`{"auth_typ":"aad","claims":[{"typ":"appid","val":"11111111-aaaa-bbbb-cccc-000000000001"}]}`))
	r := req{contentType: "application/json", ids: hostsim.FunctionKey("default"), body: productJSON("p-1", 5),
		headers: map[string]string{"X-MS-CLIENT-PRINCIPAL": principal}}
	e.post(r).accepted(t)
	if src := e.hub.events()[0].Source(); src != "/partners/acme" {
		t.Fatalf("source %s, want /partners/acme", src)
	}
	r.headers["X-MS-CLIENT-PRINCIPAL"] = base64.StdEncoding.EncodeToString([]byte(`{"claims":[{"typ":"appid","val":"someone-else"}]}`))
	if rp := e.post(r); rp.status != http.StatusForbidden {
		t.Fatalf("unmapped application: %d %s", rp.status, rp.body)
	}
}

// The forwarded path (enableForwardingHttpRequest) carries no identities: it can only say 401.
func TestPartnerFeedbackForwardedPathHasNoIdentity(t *testing.T) {
	e := newFeedbackEnv(t, 0)
	res, err := http.Post(strings.TrimSuffix(e.host.BaseURL, "/")+"/api/feedback", "application/json", strings.NewReader(productJSON("p", 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), b)
	}
}
