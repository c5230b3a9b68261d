package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/contoso/eventpipeline/pkg/catalog"
	"github.com/contoso/eventpipeline/pkg/publish/webhook"
)

type recorder struct {
	mu   sync.Mutex
	ids  []string
	fail map[string]bool
}

func (r *recorder) handle(ctx context.Context, e event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[e.ID()] {
		return errors.New("downstream unavailable")
	}
	r.ids = append(r.ids, e.ID())
	return nil
}

func newServer(t *testing.T, token string) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{fail: map[string]bool{}}
	rc := &Receiver{AllowedOrigins: []string{"eventgrid.azure.net"}, Handle: rec.handle, Seen: NewDedupe(1000)}
	if token != "" {
		rc.Authorize = StaticBearer(token)
	}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return srv, rec
}

func productEvent(t *testing.T, id, productID string) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource(catalog.EventSource)
	e.SetType(catalog.TypeUpdated)
	e.SetSubject(catalog.Subject("tools", productID))
	e.SetTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	if err := e.SetData(event.ApplicationJSON, map[string]any{"productId": productID, "name": "Hammer", "category": "tools",
		"price": 9.5, "currency": "EUR", "stock": 3, "inStock": true}); err != nil {
		t.Fatal(err)
	}
	return e
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestHandshake(t *testing.T) {
	srv, _ := newServer(t, "")
	tests := []struct {
		name       string
		headers    map[string]string
		wantStatus int
		wantOrigin string
		wantRate   string
	}{
		{"event grid", map[string]string{"WebHook-Request-Origin": "eventgrid.azure.net"}, 200, "eventgrid.azure.net", ""},
		{"with a requested rate", map[string]string{"WebHook-Request-Origin": "eventgrid.azure.net", "WebHook-Request-Rate": "120"}, 200, "eventgrid.azure.net", "120"},
		{"unknown origin", map[string]string{"WebHook-Request-Origin": "evil.example"}, 403, "", ""},
		{"no origin", nil, 400, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodOptions, srv.URL, nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			res, _ := do(t, req)
			if res.StatusCode != tt.wantStatus || res.Header.Get("WebHook-Allowed-Origin") != tt.wantOrigin ||
				res.Header.Get("WebHook-Allowed-Rate") != tt.wantRate {
				t.Fatalf("status %d, allowed origin %q, rate %q", res.StatusCode, res.Header.Get("WebHook-Allowed-Origin"), res.Header.Get("WebHook-Allowed-Rate"))
			}
		})
	}
}

func TestSingleStructuredAndBinary(t *testing.T) {
	srv, rec := newServer(t, "")
	ctx := context.Background()
	// Binary mode (ce-* headers), as cehttp writes a single event by default.
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, srv.URL, productEvent(t, "e1", "p-1"))
	if err != nil {
		t.Fatal(err)
	}
	if res, body := do(t, req); res.StatusCode != 200 {
		t.Fatalf("binary: %d %s", res.StatusCode, body)
	}
	// Structured mode, as Event Grid delivers.
	b, _ := json.Marshal(productEvent(t, "e2", "p-2"))
	req, _ = http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	if res, body := do(t, req); res.StatusCode != 200 {
		t.Fatalf("structured: %d %s", res.StatusCode, body)
	}
	if strings.Join(rec.ids, ",") != "e1,e2" {
		t.Fatalf("handled %v", rec.ids)
	}
}

func TestBatchIsIdempotentByID(t *testing.T) {
	srv, rec := newServer(t, "")
	batch := []event.Event{productEvent(t, "e1", "p-1"), productEvent(t, "e2", "p-2"), productEvent(t, "e1", "p-1")}
	post := func() (int, string) {
		req, err := cehttp.NewHTTPRequestFromEvents(context.Background(), srv.URL, batch)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/cloudevents-batch+json; charset=utf-8")
		res, body := do(t, req)
		return res.StatusCode, body
	}
	if code, body := post(); code != 200 || body != `{"received":3,"handled":2}` {
		t.Fatalf("first delivery: %d %s", code, body)
	}
	if code, body := post(); code != 200 || body != `{"received":3,"handled":0}` {
		t.Fatalf("redelivery: %d %s", code, body)
	}
	if strings.Join(rec.ids, ",") != "e1,e2" {
		t.Fatalf("handled %v", rec.ids)
	}
}

func TestFailureMakesEventGridRetryOnlyWhatIsLeft(t *testing.T) {
	srv, rec := newServer(t, "")
	rec.fail["e2"] = true
	batch := []event.Event{productEvent(t, "e1", "p-1"), productEvent(t, "e2", "p-2"), productEvent(t, "e3", "p-3")}
	post := func() int {
		req, _ := cehttp.NewHTTPRequestFromEvents(context.Background(), srv.URL, batch)
		res, _ := do(t, req)
		return res.StatusCode
	}
	if code := post(); code != 500 {
		t.Fatalf("status %d, want 500 so that Event Grid retries", code)
	}
	delete(rec.fail, "e2")
	if code := post(); code != 200 {
		t.Fatalf("retry status %d", code)
	}
	if strings.Join(rec.ids, ",") != "e1,e2,e3" {
		t.Fatalf("handled %v", rec.ids)
	}
}

func TestBearerToken(t *testing.T) {
	srv, rec := newServer(t, "s3cret")
	for _, auth := range []string{"", "Bearer wrong", "Basic czNjcmV0", "Bearer s3cret"} {
		req, _ := cehttp.NewHTTPRequestFromEvent(context.Background(), srv.URL, productEvent(t, "e-"+auth, "p-1"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, _ := do(t, req)
		want := 401
		if auth == "Bearer s3cret" {
			want = 200
		}
		if res.StatusCode != want {
			t.Errorf("Authorization %q: status %d, want %d", auth, res.StatusCode, want)
		}
	}
	if len(rec.ids) != 1 {
		t.Fatalf("handled %v", rec.ids)
	}
	// The handshake needs no token (Event Grid sends none with it).
	req, _ := http.NewRequest(http.MethodOptions, srv.URL, nil)
	req.Header.Set("WebHook-Request-Origin", "eventgrid.azure.net")
	if res, _ := do(t, req); res.StatusCode != 200 {
		t.Fatalf("handshake status %d", res.StatusCode)
	}
}

func TestBadRequests(t *testing.T) {
	srv, _ := newServer(t, "")
	tests := []struct {
		name, contentType, body string
		method                  string
		want                    int
	}{
		{"not json", "application/cloudevents+json", "hello", http.MethodPost, 400},
		{"missing id", "application/cloudevents+json", `{"specversion":"1.0","source":"/s","type":"t"}`, http.MethodPost, 400},
		{"empty batch", "application/cloudevents-batch+json", `[]`, http.MethodPost, 400},
		{"plain json", "application/json", `{"productId":"p-1"}`, http.MethodPost, 400},
		{"too large", "application/cloudevents+json", `{"data":"` + strings.Repeat("x", 5<<20) + `"}`, http.MethodPost, 413},
		{"get", "", "", http.MethodGet, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if res, body := do(t, req); res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.want, body)
			}
		})
	}
}

// TestFromTheLocalPublisher: the project's own local stand-in for an Event Grid subscription
// (pkg/publish/webhook, used with LOCAL_PARTNER_WEBHOOKS) completes the handshake with this receiver
// and delivers real product events built by pkg/catalog.
func TestFromTheLocalPublisher(t *testing.T) {
	rc := &Receiver{AllowedOrigins: []string{webhook.Origin}, Seen: NewDedupe(100)}
	mirror := NewMirror()
	rc.Handle = mirror.Apply
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s, err := webhook.New(srv.URL, webhook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := catalog.DecodeChange([]byte(`{"id":"p-7","name":"Rake","category":"garden","price":12.5,"currency":"EUR","stock":3,"_etag":"\"e\"","_ts":1764072000,"_lsn":4}`))
	if err != nil {
		t.Fatal(err)
	}
	c := catalog.Diff(nil, &doc)
	evs, err := catalog.Events(&c, doc.Version)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // delivered twice: handled once
		if err := s.Send(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
	got := mirror.Snapshot()["p-7"]
	if got.Name != "Rake" || got.Price != 12.5 || !got.InStock || rc.Seen.Len() != 1 {
		t.Fatalf("mirror %+v, seen %d", got, rc.Seen.Len())
	}
}

func TestMirrorKeepsNewest(t *testing.T) {
	m := NewMirror()
	ev := func(typ string, sec int, name string) event.Event {
		e := event.New()
		e.SetID(name)
		e.SetSource(catalog.EventSource)
		e.SetType(typ)
		e.SetTime(time.Unix(int64(sec), 0))
		_ = e.SetData(event.ApplicationJSON, map[string]any{"productId": "p-1", "name": name})
		return e
	}
	ctx := context.Background()
	for _, e := range []event.Event{ev(catalog.TypeUpdated, 20, "newer"), ev(catalog.TypeCreated, 10, "older")} {
		if err := m.Apply(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if m.Snapshot()["p-1"].Name != "newer" {
		t.Fatalf("out-of-order event won: %+v", m.Snapshot())
	}
	_ = m.Apply(ctx, ev(catalog.TypeDeleted, 30, "gone"))
	_ = m.Apply(ctx, ev(catalog.TypeUpdated, 25, "late"))
	if _, ok := m.Snapshot()["p-1"]; ok {
		t.Fatalf("late update resurrected a deleted product")
	}
	if err := m.Apply(ctx, ev("com.contoso.other", 40, "x")); err != nil {
		t.Fatal(err)
	}
}
