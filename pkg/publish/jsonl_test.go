package publish_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/publish/webhook"
)

func newJSONL(t *testing.T, dir, name string, opts publish.JSONLOptions) *publish.JSONL {
	t.Helper()
	j, err := publish.NewJSONL(dir, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJSONLAppendsOneStructuredEventPerLine(t *testing.T) {
	dir := t.TempDir()
	j := newJSONL(t, dir, "ProductEventsTopic", publish.JSONLOptions{})
	if want := filepath.Join(dir, "events", "ProductEventsTopic.jsonl"); j.Path() != want {
		t.Errorf("Path = %s, want %s", j.Path(), want)
	}
	in := newEvents(t, "e", 3)
	pretty := newEvent(t, "pretty")
	pretty.DataEncoded = []byte("{\n  \"spread\": [1,\n 2]\n}")
	in = append(in, pretty)
	if err := j.Send(context.Background(), in[:2]); err != nil {
		t.Fatal(err)
	}
	if err := j.Send(context.Background(), in[2:]); err != nil {
		t.Fatal(err)
	}
	// A second sender on the same file (a restart) appends.
	j.Close()
	j2 := newJSONL(t, dir, "ProductEventsTopic", publish.JSONLOptions{})
	again := newEvent(t, "after-restart")
	if err := j2.Send(context.Background(), []event.Event{again}); err != nil {
		t.Fatal(err)
	}
	in = append(in, again)

	lines := readLines(t, j.Path())
	if len(lines) != len(in) {
		t.Fatalf("%d lines, want %d", len(lines), len(in))
	}
	for i, line := range lines {
		var got event.Event
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("line %d is not a structured CloudEvent: %v\n%s", i, err, line)
		}
		want, _ := json.Marshal(in[i])
		if diff := cmp.Diff(decode(t, want), decode(t, line)); diff != "" {
			t.Errorf("line %d (-sent +written):\n%s", i, diff)
		}
		if _, isObject := decode(t, line)["data"].(map[string]any); !isObject {
			t.Errorf("line %d: data is not a JSON object: %s", i, line)
		}
	}
	if err := j.Send(context.Background(), newEvents(t, "closed", 1)); !errors.Is(err, publish.ErrNotDelivered) {
		t.Errorf("Send after Close: %v, want ErrNotDelivered", err)
	}
}

func TestJSONLIsSafeForConcurrentUse(t *testing.T) {
	j := newJSONL(t, t.TempDir(), "AnalyticsEventsTopic", publish.JSONLOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	const writers, sends, per = 8, 40, 3
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range sends {
				if err := j.Send(context.Background(), newEvents(t, fmt.Sprintf("w%d-s%d-", w, s), per)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	lines := readLines(t, j.Path())
	if len(lines) != writers*sends*per {
		t.Fatalf("%d lines, want %d", len(lines), writers*sends*per)
	}
	seen := map[string]bool{}
	for i, l := range lines {
		id, _ := decode(t, l)["id"].(string)
		if seen[id] {
			t.Fatalf("line %d: id %s written twice", i, id)
		}
		seen[id] = true
	}
}

func TestJSONLRejectsInvalidEvents(t *testing.T) {
	j := newJSONL(t, t.TempDir(), "feedback", publish.JSONLOptions{})
	bad := newEvent(t, "bad")
	bad.SetType("")
	notJSON := newEvent(t, "notjson")
	notJSON.DataEncoded = []byte("{nope")
	for _, b := range []event.Event{bad, notJSON} {
		err := j.Send(context.Background(), []event.Event{newEvent(t, "ok-"+b.ID()), b, newEvent(t, "after")})
		var pe *publish.PartialError
		if !errors.As(err, &pe) || pe.Delivered != 1 || pe.Failed != 1 || publish.Classify(err) != publish.ErrRejected {
			t.Errorf("%s: err = %v, want 1 written, then 1 rejected", b.ID(), err)
		}
	}
	if n := len(readLines(t, j.Path())); n != 2 {
		t.Errorf("%d lines, want the 2 valid events before the invalid ones", n)
	}
}

func TestJSONLRefusesPathNames(t *testing.T) {
	for _, name := range []string{"", "..", "a/b", `a\b`} {
		if _, err := publish.NewJSONL(t.TempDir(), name, publish.JSONLOptions{}); err == nil {
			t.Errorf("NewJSONL(%q) succeeded", name)
		}
	}
}

// partner is a fake partner webhook. allow is the WebHook-Allowed-Origin it answers ("" for none).
type partner struct {
	srv   *httptest.Server
	allow string

	mu      sync.Mutex
	options []string // WebHook-Request-Origin of each OPTIONS
	posts   []post
}

type post struct {
	ContentType string
	Body        []byte
}

func newPartner(t *testing.T, allow string) *partner {
	p := &partner{allow: allow}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch r.Method {
		case http.MethodOptions:
			p.options = append(p.options, r.Header.Get("WebHook-Request-Origin"))
			if p.allow == "" {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			w.Header().Set("WebHook-Allowed-Origin", p.allow)
			w.Header().Set("Allow", "POST")
			w.WriteHeader(http.StatusOK)
		case http.MethodPost:
			b, _ := io.ReadAll(r.Body)
			p.posts = append(p.posts, post{r.Header.Get("Content-Type"), b})
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *partner) seen() ([]string, []post) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.options...), append([]post(nil), p.posts...)
}

func TestJSONLDeliversToPartnerWebhooks(t *testing.T) {
	good := newPartner(t, webhook.Origin)
	refusing := newPartner(t, "")
	var mirrors []publish.Sender
	for _, p := range []*partner{good, refusing} {
		s, err := webhook.New(p.srv.URL+"/events", webhook.Options{})
		if err != nil {
			t.Fatal(err)
		}
		mirrors = append(mirrors, s)
	}
	var logs bytes.Buffer
	j := newJSONL(t, t.TempDir(), "ProductEventsTopic", publish.JSONLOptions{
		Mirrors: mirrors, Log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	in := newEvents(t, "p", 3)
	// A partner that fails the handshake is not fatal: the JSON-lines file is the record.
	if err := j.Send(context.Background(), in[:2]); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := j.Send(context.Background(), in[2:]); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := len(readLines(t, j.Path())); n != 3 {
		t.Errorf("%d lines in the file, want 3", n)
	}

	opts, posts := good.seen()
	if diff := cmp.Diff([]string{webhook.Origin}, opts); diff != "" {
		t.Errorf("accepting partner: handshakes (-want +got):\n%s", diff)
	}
	if len(posts) != 3 {
		t.Fatalf("accepting partner got %d POSTs, want 3", len(posts))
	}
	for i, p := range posts {
		if p.ContentType != "application/cloudevents+json" {
			t.Errorf("POST %d: Content-Type %q, want structured mode", i, p.ContentType)
		}
		want, _ := json.Marshal(in[i])
		if diff := cmp.Diff(decode(t, want), decode(t, p.Body)); diff != "" {
			t.Errorf("POST %d body (-event +posted):\n%s", i, diff)
		}
	}

	opts, posts = refusing.seen()
	if len(opts) != 1 || len(posts) != 0 {
		t.Errorf("refusing partner: %d handshakes, %d POSTs; want 1 handshake (remembered), no POST", len(opts), len(posts))
	}
	if !bytes.Contains(logs.Bytes(), []byte("partner webhook delivery failed")) || !bytes.Contains(logs.Bytes(), []byte(refusing.srv.URL)) {
		t.Errorf("the refused handshake is not logged with the URL:\n%s", logs.String())
	}
}

// An attribute that is not UTF-8 is written with U+FFFD (as encoding/json does on the Event Grid
// path); the line stays valid JSON.
func TestJSONLLinesStayJSONWithAttributesThatAreNotUTF8(t *testing.T) {
	j := newJSONL(t, t.TempDir(), "feedback", publish.JSONLOptions{})
	e := newEvent(t, "ok")
	e.SetSubject("/products/\xff\xfe")
	if err := j.Send(context.Background(), []event.Event{e}); err != nil && publish.Classify(err) != publish.ErrRejected {
		t.Fatalf("err = %v, want written or rejected", err)
	}
	for i, l := range readLines(t, j.Path()) {
		if !json.Valid(l) {
			t.Errorf("line %d is not valid JSON: %q", i, l)
		}
	}
}
