package protocol_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/delivery"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

func TestParseTimeSpan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"00:10:00": 10 * time.Minute, "00:00:05": 5 * time.Second, "1.02:00:00": 26 * time.Hour,
		"00:00:01.5": 1500 * time.Millisecond, "-1": 0, "23:59:59": 24*time.Hour - time.Second,
	} {
		if got, err := protocol.ParseTimeSpan(in); err != nil || got != want {
			t.Errorf("ParseTimeSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "10", "10:00", "00:60:00", "24:00:00", "aa:bb:cc", "00:00:00"} {
		if _, err := protocol.ParseTimeSpan(bad); err == nil {
			t.Errorf("ParseTimeSpan(%q) accepted", bad)
		}
	}
}

func TestLoadFunctionTimeout(t *testing.T) {
	dir := t.TempDir()
	if d, found, err := protocol.LoadFunctionTimeout(dir); err != nil || found || d != protocol.DefaultFunctionTimeout {
		t.Fatalf("no host.json: %v %v %v", d, found, err)
	}
	os.WriteFile(filepath.Join(dir, "host.json"), []byte(`{"version":"2.0","functionTimeout":"00:05:00"}`), 0o644)
	if d, found, err := protocol.LoadFunctionTimeout(dir); err != nil || !found || d != 5*time.Minute {
		t.Fatalf("host.json: %v %v %v", d, found, err)
	}
	os.WriteFile(filepath.Join(dir, "host.json"), []byte(`{"functionTimeout":"five minutes"}`), 0o644)
	if _, _, err := protocol.LoadFunctionTimeout(dir); err == nil || !strings.Contains(err.Error(), "functionTimeout") {
		t.Fatalf("bad functionTimeout: %v, want an error naming it", err)
	}
}

func invokeF(h http.Handler, body []byte) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/F", bytes.NewReader(body)))
	return w
}

func batch(retry *protocol.RetryContext) []byte {
	pc := protocol.PartitionContext{EventHubName: "clickstream", ConsumerGroup: "g", PartitionID: "0"}
	return hostsim.EventHubBatch("F", "events", pc, []hostsim.Event{{Body: []byte(`{}`), SequenceNumber: 1, EnqueuedTime: time.Now()}}, retry)
}

// The function's context ends at Budget.Work; on the last attempt delivery.Settle parks the work with
// the reserve context (still alive), and the invocation succeeds; before it, the invocation fails.
func TestWorkDeadlineThenPark(t *testing.T) {
	b := protocol.Budget{FunctionTimeout: 400 * time.Millisecond}
	var parkedWithLiveContext atomic.Bool
	f := func(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
		<-ctx.Done() // a store call that waits for its context
		retry, _ := inv.Request.Retry()
		_, err := delivery.Settle(ctx, ctx.Err(), retry.LastAttempt(), func(pctx context.Context, reason string) error {
			parkedWithLiveContext.Store(pctx.Err() == nil && strings.Contains(reason, "deadline"))
			return nil
		})
		return nil, err
	}
	h := protocol.Handler("F", f, protocol.WithBudget(b))
	start := time.Now()
	if w := invokeF(h, batch(&protocol.RetryContext{RetryCount: 1, MaxRetryCount: 5})); w.Code != 500 {
		t.Fatalf("before the last attempt: status %d, want 500", w.Code)
	}
	if el := time.Since(start); el < b.Work()-10*time.Millisecond || el > b.Overdue() {
		t.Fatalf("answered after %v, want at the work deadline %v", el, b.Work())
	}
	if w := invokeF(h, batch(&protocol.RetryContext{RetryCount: 5, MaxRetryCount: 5})); w.Code != 200 || !parkedWithLiveContext.Load() {
		t.Fatalf("last attempt: status %d, parked with a live context %v", w.Code, parkedWithLiveContext.Load())
	}
}

// A function that ignores its context is overdue at Budget.Overdue: on the last attempt the overdue
// hook parks its input and the host gets 200 before its own timeout; before it, 500.
func TestOverdueFunctionIsParkedOnLastAttempt(t *testing.T) {
	b := protocol.Budget{FunctionTimeout: 300 * time.Millisecond}
	release := make(chan struct{})
	defer close(release)
	hung := func(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
		<-release // ignores ctx
		return nil, nil
	}
	var parked atomic.Int32
	overdue := func(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
		if ctx.Err() != nil {
			return nil, errors.New("overdue hook got a dead context")
		}
		parked.Add(1)
		return nil, nil
	}
	h := protocol.Handler("F", hung, protocol.WithBudget(b), protocol.WithOverdue(overdue))
	start := time.Now()
	if w := invokeF(h, batch(&protocol.RetryContext{RetryCount: 0, MaxRetryCount: 5})); w.Code != 500 || parked.Load() != 0 {
		t.Fatalf("first attempt: status %d, parked %d; want 500 and nothing parked", w.Code, parked.Load())
	}
	w := invokeF(h, batch(&protocol.RetryContext{RetryCount: 5, MaxRetryCount: 5}))
	if w.Code != 200 || parked.Load() != 1 {
		t.Fatalf("last attempt: status %d, parked %d; want 200 and the batch parked", w.Code, parked.Load())
	}
	if el := time.Since(start); el > 2*b.FunctionTimeout {
		t.Fatalf("two invocations took %v: the answers must come before the function timeout", el)
	}
}

// The commit runs after the function and before the answer; if it fails the invocation fails.
func TestCommitBeforeAnswer(t *testing.T) {
	var order []string
	f := func(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
		order = append(order, "function")
		return nil, nil
	}
	commitErr := error(nil)
	commit := func(context.Context) error { order = append(order, "commit"); return commitErr }
	h := protocol.Handler("F", f, protocol.WithCommit(commit))
	if w := invokeF(h, batch(nil)); w.Code != 200 || strings.Join(order, ",") != "function,commit" {
		t.Fatalf("status %d, order %v", w.Code, order)
	}
	commitErr = errors.New("disk full")
	if w := invokeF(h, batch(nil)); w.Code != 500 || !strings.Contains(w.Body.String(), "disk full") {
		t.Fatalf("failed commit: status %d %s, want 500 naming it", w.Code, w.Body)
	}
	// A failed function is not committed.
	order = nil
	hf := protocol.Handler("F", func(context.Context, *protocol.Invocation) (*protocol.Response, error) {
		return nil, errors.New("store down")
	}, protocol.WithCommit(commit))
	if w := invokeF(hf, batch(nil)); w.Code != 500 || len(order) != 0 {
		t.Fatalf("failed function: status %d, order %v", w.Code, order)
	}
}

// The forwarded path holds the answer until the commit; a failed commit turns it into a 503 problem.
func TestCommittingHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"accepted":1}`))
	})
	ok := protocol.Committing(func(context.Context) error { return nil }, h)
	w := httptest.NewRecorder()
	ok.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/x", nil))
	if w.Code != 202 || w.Body.String() != `{"accepted":1}` {
		t.Fatalf("committed: %d %s", w.Code, w.Body)
	}
	bad := protocol.Committing(func(context.Context) error { return errors.New("io") }, h)
	w = httptest.NewRecorder()
	bad.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/x", nil))
	if w.Code != 503 || w.Header().Get("Content-Type") != "application/problem+json" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("failed commit: %d %v %s", w.Code, w.Header(), w.Body)
	}
}

func TestBodyLimit(t *testing.T) {
	h := protocol.Handler("F", func(context.Context, *protocol.Invocation) (*protocol.Response, error) { return nil, nil }, protocol.WithMaxBody(100))
	if w := invokeF(h, bytes.Repeat([]byte(" "), 101)); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", w.Code)
	}
	if w := invokeF(h, []byte(`{"Data":{},"Metadata":{}}`)); w.Code != 200 {
		t.Fatalf("small envelope: status %d", w.Code)
	}
}
