package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/publish"
)

// endpoint is a fake partner: it answers OPTIONS with (status, allowed origin) and POSTs with the
// next of postStatuses (202 when used up).
type endpoint struct {
	srv           *httptest.Server
	optionsStatus int
	allowed       string

	mu           sync.Mutex
	postStatuses []int
	handshakes   int
	posts        int
}

func newEndpoint(t *testing.T, optionsStatus int, allowed string, postStatuses ...int) *endpoint {
	e := &endpoint{optionsStatus: optionsStatus, allowed: allowed, postStatuses: postStatuses}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if r.Method == http.MethodOptions {
			e.handshakes++
			if r.Header.Get("WebHook-Request-Origin") != Origin {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			if e.allowed != "" {
				w.Header().Set("WebHook-Allowed-Origin", e.allowed)
			}
			w.WriteHeader(e.optionsStatus)
			return
		}
		e.posts++
		status := http.StatusAccepted
		if len(e.postStatuses) > 0 {
			status, e.postStatuses = e.postStatuses[0], e.postStatuses[1:]
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) counts() (handshakes, posts int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.handshakes, e.posts
}

func events(n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		e := event.New()
		e.SetID(string(rune('a' + i)))
		e.SetSource("/contoso/catalog")
		e.SetType("com.contoso.product.created")
		_ = e.SetData(event.ApplicationJSON, map[string]int{"n": i})
		out[i] = e
	}
	return out
}

func TestHandshake(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		allowed string
		want    error // nil: delivered
	}{
		{"exact origin", http.StatusOK, Origin, nil},
		{"any origin", http.StatusOK, "*", nil},
		{"origin among several", http.StatusOK, "example.com, EventGrid.Azure.Net", nil},
		{"no allowed origin", http.StatusOK, "", publish.ErrRejected},
		{"another origin", http.StatusOK, "example.com", publish.ErrRejected},
		{"not 200", http.StatusNoContent, Origin, publish.ErrRejected},
		{"OPTIONS not allowed", http.StatusMethodNotAllowed, "", publish.ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := newEndpoint(t, tt.status, tt.allowed)
			s, err := New(ep.srv.URL, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				err = s.Send(context.Background(), events(2))
			}
			hs, posts := ep.counts()
			if tt.want == nil {
				if err != nil || hs != 1 || posts != 4 {
					t.Fatalf("err %v, %d handshakes, %d posts; want nil, 1 handshake, 4 posts", err, hs, posts)
				}
				return
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrHandshake) || publish.Classify(err) != tt.want {
				t.Fatalf("err = %v, want %v (handshake)", err, tt.want)
			}
			if hs != 1 || posts != 0 {
				t.Fatalf("%d handshakes, %d posts; want the failed handshake remembered and nothing posted", hs, posts)
			}
		})
	}
}

func TestFailedHandshakeIsRetriedLater(t *testing.T) {
	ep := newEndpoint(t, http.StatusOK, "")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s, err := New(ep.srv.URL, Options{RecheckAfter: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Send(context.Background(), events(1))
	now = now.Add(30 * time.Second)
	_ = s.Send(context.Background(), events(1))
	if hs, _ := ep.counts(); hs != 1 {
		t.Fatalf("%d handshakes within RecheckAfter, want 1", hs)
	}
	ep.mu.Lock()
	ep.allowed = Origin // the partner fixed its endpoint
	ep.mu.Unlock()
	now = now.Add(time.Minute)
	if err := s.Send(context.Background(), events(1)); err != nil {
		t.Fatalf("after RecheckAfter: %v", err)
	}
	if hs, posts := ep.counts(); hs != 2 || posts != 1 {
		t.Fatalf("%d handshakes, %d posts; want 2, 1", hs, posts)
	}
}

func TestPostClassification(t *testing.T) {
	tests := []struct {
		status int
		want   error
	}{
		{http.StatusOK, nil},
		{http.StatusNoContent, nil},
		{http.StatusBadRequest, publish.ErrRejected},
		{http.StatusUnauthorized, publish.ErrRejected},
		{http.StatusRequestTimeout, publish.ErrNotDelivered},
		{http.StatusTooManyRequests, publish.ErrNotDelivered},
		{http.StatusInternalServerError, publish.ErrNotDelivered},
		{http.StatusServiceUnavailable, publish.ErrNotDelivered},
	}
	for _, tt := range tests {
		ep := newEndpoint(t, http.StatusOK, Origin, http.StatusOK, tt.status)
		s, err := New(ep.srv.URL, Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(context.Background(), events(3))
		_, posts := ep.counts()
		if tt.want == nil {
			if err != nil || posts != 3 {
				t.Errorf("%d: %v after %d posts; want delivered", tt.status, err, posts)
			}
			continue
		}
		var pe *publish.PartialError
		if !errors.As(err, &pe) || pe.Delivered != 1 || pe.Failed != 1 || publish.Classify(err) != tt.want {
			t.Errorf("%d: err = %v; want 1 delivered then %v", tt.status, err, tt.want)
		}
		if posts != 2 {
			t.Errorf("%d: %d posts, want 2 (it stops at the first failure)", tt.status, posts)
		}
	}
}

func TestUnreachableIsNotDelivered(t *testing.T) {
	ep := newEndpoint(t, http.StatusOK, Origin)
	url := ep.srv.URL
	ep.srv.Close()
	s, err := New(url, Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), events(1)); publish.Classify(err) != publish.ErrNotDelivered || !errors.Is(err, ErrHandshake) {
		t.Fatalf("err = %v, want a not-delivered handshake failure", err)
	}
}

func TestNewRefusesOtherURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://x/y", "/relative", "http://"} {
		if _, err := New(u, Options{}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}
