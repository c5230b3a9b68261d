package handlers_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/feedback"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/publish"
)

// Benchmarks of POST /PartnerFeedback as the host calls it (the JSON envelope, rendered by hostsim),
// served in-process by the router with the local defaults: the embedded idempotency collection and
// the JSON-lines twin of the hub (LOCAL_DATA_DIR/events/feedback.jsonl). Run per core with
//
//	go test ./handlers -run '^$' -bench PartnerFeedback -benchmem -cpu 1

func benchRouter(b *testing.B, rate int) http.Handler {
	b.Helper()
	dir := b.TempDir()
	db, err := embedded.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	keys, err := embedded.NewCollection[feedback.Record](db, "idempotency")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub, err := publish.NewJSONL(dir, "feedback", publish.JSONLOptions{Log: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { hub.Close() })
	d := handlers.Deps{Log: log, Feedback: &feedback.Service{Sender: hub, Keys: keys, Log: log}}
	if rate > 0 {
		d.FeedbackLimit = feedback.NewLimiter(rate)
	}
	return handlers.New(d)
}

// envelope renders the host's request for one partner call. The body holds the marker
// "K000000000000" (13 bytes), which stamp overwrites so every iteration carries a new id.
func envelope(b *testing.B, contentType string, headers map[string]string, body string, ids []protocol.Identity) []byte {
	b.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://contoso-fn.azurewebsites.net/api/feedback", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	env, err := hostsim.HTTP(handlers.FnPartnerFeedback, "req", r, nil, ids)
	if err != nil {
		b.Fatal(err)
	}
	return env
}

const marker = "K000000000000"

// stamp writes n into every marker of env (in place; the markers keep their length).
func stamp(env []byte, at []int, n int) {
	s := strconv.Itoa(n)
	for _, i := range at {
		copy(env[i+len(marker)-len(s):i+len(marker)], s)
	}
}

func markers(env []byte) []int {
	var at []int
	for off := 0; ; {
		i := bytes.Index(env[off:], []byte(marker))
		if i < 0 {
			return at
		}
		at = append(at, off+i)
		off += i + len(marker)
	}
}

func serve(b *testing.B, h http.Handler, env []byte, want int) {
	req := httptest.NewRequest(http.MethodPost, "/"+handlers.FnPartnerFeedback, bytes.NewReader(env))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"statusCode":"`+strconv.Itoa(want)+`"`)) {
		b.Fatalf("reply %d: %s", rec.Code, rec.Body.String())
	}
}

func BenchmarkPartnerFeedbackAccepted(b *testing.B) {
	key := hostsim.FunctionKey("partner-acme")
	comment := strings.Repeat("Good grip, a bit heavy. ", 20) // ~500 characters, a typical review
	one := `{"kind":"product","productId":"p-` + marker + `","rating":4,"title":"Sturdy","comment":"` + comment + `","locale":"en-GB"}`
	structured := `{"specversion":"1.0","id":"` + marker + `","source":"/partners/acme","type":"com.contoso.feedback.product.submitted","data":` + one + `}`
	var batch strings.Builder
	batch.WriteString("[")
	for i := range 100 {
		if i > 0 {
			batch.WriteString(",")
		}
		fmt.Fprintf(&batch, `{"specversion":"1.0","id":"%s-%d","source":"/partners/acme","type":"com.contoso.feedback.product.submitted","data":{"productId":"p-%d","rating":4,"comment":"Good grip."}}`, marker, i, i%17)
	}
	batch.WriteString("]")
	cases := []struct {
		name    string
		ct      string
		headers map[string]string
		body    string
		events  int
	}{
		{"json", "application/json", map[string]string{"Idempotency-Key": marker}, one, 1},
		{"structured", "application/cloudevents+json", nil, structured, 1},
		{"batch100", "application/cloudevents-batch+json", nil, batch.String(), 100},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := benchRouter(b, 0)
			env := envelope(b, c.ct, c.headers, c.body, key)
			at := markers(env)
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				stamp(env, at, i)
				serve(b, h, env, http.StatusAccepted)
			}
			b.ReportMetric(float64(b.N*c.events)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkPartnerFeedbackRejected is the cost of a request that is refused: nothing is published
// and nothing is stored.
func BenchmarkPartnerFeedbackRejected(b *testing.B) {
	body := `{"kind":"product","productId":"p-1","rating":4,"comment":"fine"}`
	cases := []struct {
		name   string
		ct     string
		body   string
		ids    []protocol.Identity
		rate   int
		status int
	}{
		{"401-no-identity", "application/json", body, nil, 0, 401},
		{"403-default-key", "application/json", body, hostsim.FunctionKey("default"), 0, 403},
		{"429-rate-limited", "application/json", body, hostsim.FunctionKey("partner-acme"), 1, 429},
		{"415-media-type", "text/plain", body, hostsim.FunctionKey("partner-acme"), 0, 415},
		{"400-malformed", "application/json", `{"kind":`, hostsim.FunctionKey("partner-acme"), 0, 400},
		{"422-invalid", "application/json", `{"kind":"product","rating":9,"locale":"?","extra":1}`, hostsim.FunctionKey("partner-acme"), 0, 422},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := benchRouter(b, c.rate)
			env := envelope(b, c.ct, nil, c.body, c.ids)
			if c.status == 429 {
				serve(b, h, env, 202) // use the one token
			}
			b.ReportAllocs()
			for b.Loop() {
				serve(b, h, env, c.status)
			}
		})
	}
}
