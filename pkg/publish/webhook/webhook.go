// Package webhook delivers CloudEvents to one HTTP endpoint the way Event Grid delivers to a partner's
// webhook: first the CloudEvents abuse-protection handshake (HTTP OPTIONS with WebHook-Request-Origin,
// answered 200 with a matching WebHook-Allowed-Origin), then each event POSTed with the CloudEvents HTTP
// binding in structured mode (Content-Type: application/cloudevents+json), through cloudevents/sdk-go.
//
// It is the local stand-in for an Event Grid event subscription (LOCAL_PARTNER_WEBHOOKS): the
// embedded publisher mirrors what it writes to these senders so that a local run shows a partner
// receiving events. It has no retry schedule, filters or dead-lettering of its own; Event Grid does
// that in Azure.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	ceclient "github.com/cloudevents/sdk-go/v2/client"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/contoso/eventpipeline/pkg/publish"
)

// Origin is the WebHook-Request-Origin Event Grid sends.
const Origin = "eventgrid.azure.net"

// Defaults of Options.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultRecheckAfter = time.Minute
)

// ErrHandshake marks an endpoint that did not accept the abuse-protection handshake. It is
// classified as rejected: until the endpoint changes, nothing will be delivered to it.
var ErrHandshake = errors.New("webhook handshake failed")

// Options tune a Sender. The zero value is right for the local run.
type Options struct {
	// Timeout bounds each request (the handshake and each POST). Event Grid waits 30 s; locally a
	// short timeout keeps a hung partner from stalling the function that publishes.
	Timeout time.Duration
	// RecheckAfter is how long a failed handshake is remembered before it is tried again.
	RecheckAfter time.Duration
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	Now       func() time.Time
}

// Sender delivers to one webhook URL. It implements publish.Sender and is safe for concurrent use.
type Sender struct {
	target string
	opts   Options
	hc     *http.Client
	ce     ceclient.Client

	mu        sync.Mutex
	validated bool
	failedAt  time.Time
	failure   error
}

var _ publish.Sender = (*Sender)(nil)

// New returns the Sender for target (an http or https URL).
func New(target string, opts Options) (*Sender, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("webhook.New: %q is not an http(s) URL", target)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.RecheckAfter <= 0 {
		opts.RecheckAfter = DefaultRecheckAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	hc := &http.Client{Timeout: opts.Timeout, Transport: opts.Transport}
	// No redirects: Event Grid does not follow them either, and a redirect to another host would
	// skip that host's handshake.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p, err := cehttp.New(cehttp.WithTarget(target), cehttp.WithClient(*hc))
	if err != nil {
		return nil, fmt.Errorf("webhook.New(%s): %w", target, err)
	}
	c, err := ceclient.New(p)
	if err != nil {
		return nil, fmt.Errorf("webhook.New(%s): %w", target, err)
	}
	return &Sender{target: target, opts: opts, hc: hc, ce: c}, nil
}

// String names the sender in logs.
func (s *Sender) String() string { return "webhook " + s.target }

// Send implements publish.Sender: the handshake once (remembered; a failure is remembered for
// RecheckAfter), then one structured-mode POST per event, in order, stopping at the first failure.
// 2xx is delivered; 4xx other than 408 and 429, and a failed handshake, are ErrRejected; anything else
// (5xx, 408, 429, timeouts, refused connections) is ErrNotDelivered.
func (s *Sender) Send(ctx context.Context, events []event.Event) error {
	if err := s.ensureHandshake(ctx); err != nil {
		return &publish.PartialError{Delivered: 0, Failed: len(events), Err: err}
	}
	structured := binding.WithForceStructured(ctx)
	for i := range events {
		res := s.ce.Send(structured, events[i])
		if protocol.IsACK(res) {
			continue
		}
		kind := publish.ErrNotDelivered
		var hr *cehttp.Result
		if protocol.ResultAs(res, &hr) && hr.StatusCode/100 == 4 && hr.StatusCode != http.StatusRequestTimeout &&
			hr.StatusCode != http.StatusTooManyRequests {
			kind = publish.ErrRejected
		}
		return &publish.PartialError{Delivered: i, Failed: 1,
			Err: fmt.Errorf("webhook %s: event %q: %w: %v", s.target, events[i].ID(), kind, res)}
	}
	return nil
}

func (s *Sender) ensureHandshake(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.validated {
		return nil
	}
	if s.failure != nil && s.opts.Now().Sub(s.failedAt) < s.opts.RecheckAfter {
		return s.failure
	}
	if err := s.handshake(ctx); err != nil {
		s.failure, s.failedAt = err, s.opts.Now()
		return err
	}
	s.validated, s.failure = true, nil
	return nil
}

// handshake is the CloudEvents abuse-protection validation request as Event Grid sends it for
// CloudEvents subscriptions: OPTIONS with WebHook-Request-Origin; the endpoint must answer 200 and
// allow that origin (or any, "*").
func (s *Sender) handshake(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, s.target, nil)
	if err != nil {
		return fmt.Errorf("webhook %s: %w: %v", s.target, ErrHandshake, err)
	}
	req.Header.Set("WebHook-Request-Origin", Origin)
	resp, err := s.hc.Do(req)
	if err != nil {
		// Unreachable: not the endpoint's answer, so retrying later may help.
		return fmt.Errorf("webhook %s: %w: OPTIONS: %w: %v", s.target, ErrHandshake, publish.ErrNotDelivered, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook %s: %w: %w: OPTIONS answered %d, want 200", s.target, ErrHandshake, publish.ErrRejected, resp.StatusCode)
	}
	if !allowsOrigin(resp.Header.Values("WebHook-Allowed-Origin"), Origin) {
		return fmt.Errorf("webhook %s: %w: %w: WebHook-Allowed-Origin %q does not allow %s", s.target, ErrHandshake,
			publish.ErrRejected, strings.Join(resp.Header.Values("WebHook-Allowed-Origin"), ", "), Origin)
	}
	return nil
}

func allowsOrigin(values []string, origin string) bool {
	for _, v := range values {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o == "*" || strings.EqualFold(o, origin) {
				return true
			}
		}
	}
	return false
}
