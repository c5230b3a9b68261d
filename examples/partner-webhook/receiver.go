package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Receiver is a CloudEvents webhook for Event Grid (CloudEvents 1.0 delivery schema):
//   - OPTIONS: the abuse-protection handshake. Event Grid sends WebHook-Request-Origin
//     (eventgrid.azure.net) when the subscription is created; the endpoint allows it by echoing the
//     origin in WebHook-Allowed-Origin.
//   - POST: one event (structured application/cloudevents+json, or binary mode with ce-* headers) or a
//     batch (application/cloudevents-batch+json). Each event is handled once per (source, id): Event
//     Grid delivers at least once, and Contoso's ids are deterministic, so a retry repeats ids.
//
// Status codes follow what Event Grid does with them: 200 means delivered; 400 and 413 are not
// retried (the event goes to the subscription's dead-letter container); 401/403 are not retried
// either; any other failure (500, 503, a timeout) is retried on Event Grid's schedule, for up to 24 h.
type Receiver struct {
	// AllowedOrigins are the origins whose handshake is accepted ("*" accepts any).
	AllowedOrigins []string
	// Authorize checks each POST (nil: no check). StaticBearer is one; with Entra ID, validate the
	// token's audience, issuer and role instead (see docs/partners.md).
	Authorize func(r *http.Request) error
	// Handle processes one event. An error fails the delivery (500) so that Event Grid redelivers;
	// the events already handled are not handled again.
	Handle func(ctx context.Context, e event.Event) error
	// Seen remembers handled events (an in-memory window by default; use a durable store with a
	// unique key on source+id in production, since Event Grid may redeliver for 24 hours).
	Seen *Dedupe
}

// ErrUnauthorized is returned by an Authorize function to reject a request.
var ErrUnauthorized = errors.New("unauthorized")

// StaticBearer accepts requests carrying "Authorization: Bearer <token>". It suits a local run or a
// shared secret; an Entra ID-protected subscription sends a JWT that must be validated instead.
func StaticBearer(token string) func(r *http.Request) error {
	return func(r *http.Request) error {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
			return ErrUnauthorized
		}
		return nil
	}
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodOptions:
		rc.handshake(w, r)
	case http.MethodPost:
		rc.deliver(w, r)
	default:
		w.Header().Set("Allow", "OPTIONS, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// handshake answers the CloudEvents webhook validation request (CloudEvents HTTP webhook spec,
// section 4, "Abuse protection").
func (rc *Receiver) handshake(w http.ResponseWriter, r *http.Request) {
	origin := strings.TrimSpace(r.Header.Get("WebHook-Request-Origin"))
	if origin == "" {
		http.Error(w, "WebHook-Request-Origin header required", http.StatusBadRequest)
		return
	}
	if !rc.allowed(origin) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	w.Header().Set("WebHook-Allowed-Origin", origin)
	w.Header().Set("Allow", "POST")
	if rate := r.Header.Get("WebHook-Request-Rate"); rate != "" {
		// Requests per minute this endpoint accepts from the origin (it must answer when asked):
		// the rate asked for, when it is a number.
		if n, err := strconv.Atoi(rate); err == nil && n > 0 {
			w.Header().Set("WebHook-Allowed-Rate", strconv.Itoa(n))
		} else {
			w.Header().Set("WebHook-Allowed-Rate", "120")
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *Receiver) allowed(origin string) bool {
	for _, o := range rc.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

func (rc *Receiver) deliver(w http.ResponseWriter, r *http.Request) {
	if rc.Authorize != nil {
		if err := rc.Authorize(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<20)
	events, err := readEvents(r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, e := range events {
		if err := e.Validate(); err != nil {
			http.Error(w, fmt.Sprintf("event %q: %v", e.ID(), err), http.StatusBadRequest)
			return
		}
	}
	handled := 0
	for _, e := range events {
		key := e.Source() + "\x00" + e.ID()
		if !rc.Seen.Claim(key) {
			continue // handled before (or being handled by a concurrent delivery)
		}
		if err := rc.Handle(r.Context(), e); err != nil {
			rc.Seen.Release(key)
			http.Error(w, fmt.Sprintf("event %q: %v", e.ID(), err), http.StatusInternalServerError)
			return
		}
		rc.Seen.Done(key)
		handled++
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"received":%d,"handled":%d}`, len(events), handled)
}

// readEvents decodes a single event (structured or binary mode) or a batch.
func readEvents(r *http.Request) ([]event.Event, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == event.ApplicationCloudEventsBatchJSON {
		// The SDK recognises a batch only by the exact header value; normalise parameters away.
		r.Header.Set("Content-Type", event.ApplicationCloudEventsBatchJSON)
		evs, err := cehttp.NewEventsFromHTTPRequest(r)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			return nil, errors.New("empty batch")
		}
		return evs, nil
	}
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		return nil, err
	}
	return []event.Event{*e}, nil
}

// Dedupe remembers the keys of handled events, the most recent Capacity of them.
type Dedupe struct {
	Capacity int
	mu       sync.Mutex
	done     map[string]struct{}
	order    []string
	busy     map[string]struct{}
}

// NewDedupe returns a Dedupe that remembers capacity keys.
func NewDedupe(capacity int) *Dedupe {
	return &Dedupe{Capacity: capacity, done: map[string]struct{}{}, busy: map[string]struct{}{}}
}

// Claim reports whether key must be handled now: false when it was handled or is being handled.
func (d *Dedupe) Claim(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.done[key]; ok {
		return false
	}
	if _, ok := d.busy[key]; ok {
		return false
	}
	d.busy[key] = struct{}{}
	return true
}

// Done records key as handled.
func (d *Dedupe) Done(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.busy, key)
	d.done[key] = struct{}{}
	d.order = append(d.order, key)
	if len(d.order) > d.Capacity {
		delete(d.done, d.order[0])
		d.order = d.order[1:]
	}
}

// Release forgets a claim whose handling failed, so a redelivery handles it.
func (d *Dedupe) Release(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.busy, key)
}

// Len is the number of remembered keys.
func (d *Dedupe) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.done)
}
