// Package eventgrid is the Azure Event Grid (Basic, custom topic) publisher: a publish.Sender on
// azeventgrid's PublishCloudEvents. It owns the topic connection (access key or Entra ID), the mapping
// of cloudevents/sdk-go events onto azcore's messaging.CloudEvent, the split of a batch within Event
// Grid's limits, and the classification of the service's answers. Nothing outside this package
// imports azeventgrid.
package eventgrid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/messaging"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/eventgrid/azeventgrid"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/contoso/eventpipeline/pkg/azure/identity"
	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// Event Grid custom topic limits (https://learn.microsoft.com/azure/event-grid/quotas-limits): an
// event and a whole request are limited to "1 MB", and a request to 5,000 events. Requests are filled
// up to 1,000,000 bytes, which is under the limit whether "1 MB" means 10^6 or 2^20 bytes; an event is
// refused here only above 2^20 bytes (anything between goes alone and the service decides).
const (
	MaxRequestBytes = 1_000_000
	MaxEventBytes   = 1 << 20
	MaxEvents       = 5000
)

// Options tune a Sender. The zero value is right for production.
type Options struct {
	// ClientOptions are azcore's (Transport, Retry, ...). Tests set Transport to the test server's
	// client and Retry.MaxRetries to -1 for a single attempt.
	ClientOptions azcore.ClientOptions
	// Credential replaces the Entra ID credential used when the topic has no key (tests).
	Credential azcore.TokenCredential
	// Limits; zero means the package constants. Tests lower them.
	MaxRequestBytes, MaxEventBytes, MaxEvents int
}

// Sender publishes to one Event Grid topic. Safe for concurrent use.
type Sender struct {
	name     string
	endpoint string
	client   *azeventgrid.Client
	limits   limits
}

type limits struct{ requestBytes, eventBytes, events int }

var _ publish.Sender = (*Sender)(nil)

// NewSender connects to topic: with its access key when set (header aeg-sas-key), otherwise with
// Entra ID (the managed identity topic.ClientID, or the default credential chain; the identity needs
// the EventGrid Data Sender role on the topic). Nothing is sent until the first Send.
func NewSender(topic *settings.Topic, opts *Options) (*Sender, error) {
	if topic == nil || topic.Endpoint == "" {
		return nil, errors.New("eventgrid.NewSender: no topic endpoint configured")
	}
	if opts == nil {
		opts = &Options{}
	}
	co := &azeventgrid.ClientOptions{ClientOptions: opts.ClientOptions}
	if co.Retry.TryTimeout == 0 {
		// Without it a hung connection waits for the invocation's own timeout.
		co.Retry.TryTimeout = 30 * time.Second
	}
	var (
		c   *azeventgrid.Client
		err error
	)
	if topic.Key != "" {
		c, err = azeventgrid.NewClientWithSharedKeyCredential(topic.Endpoint, azcore.NewKeyCredential(topic.Key), co)
	} else {
		cred := opts.Credential
		if cred == nil {
			if cred, err = identity.Credential(topic.ClientID); err != nil {
				return nil, fmt.Errorf("eventgrid %s: %w", topic.Name, err)
			}
		}
		c, err = azeventgrid.NewClient(topic.Endpoint, cred, co)
	}
	if err != nil {
		return nil, fmt.Errorf("eventgrid %s (%s): %w", topic.Name, topic.Endpoint, err)
	}
	lim := limits{MaxRequestBytes, MaxEventBytes, MaxEvents}
	if opts.MaxRequestBytes > 0 {
		lim.requestBytes = opts.MaxRequestBytes
	}
	if opts.MaxEventBytes > 0 {
		lim.eventBytes = opts.MaxEventBytes
	}
	if opts.MaxEvents > 0 {
		lim.events = opts.MaxEvents
	}
	return &Sender{name: topic.Name, endpoint: topic.Endpoint, client: c, limits: lim}, nil
}

// String names the sender in logs.
func (s *Sender) String() string { return "eventgrid " + s.name }

// Send implements publish.Sender. The batch is split, in order, into requests within the limits; each
// request is one PublishCloudEvents call. It stops at the first failure: a *publish.PartialError says
// how many events were delivered before it and how many the failing request held.
//
// Classification: 200 delivered; 400, 401, 403, 404, 413 and other 4xx ErrRejected; 408, 429, 5xx,
// other answers and transport errors ErrNotDelivered (after the SDK's own retries). An event that is
// not valid or is larger than the event limit is ErrRejected without being sent (the events before it
// are sent first).
func (s *Sender) Send(ctx context.Context, events []event.Event) error {
	delivered := 0
	err := split(events, s.limits, func(req []messaging.CloudEvent) error {
		if _, err := s.client.PublishCloudEvents(ctx, req, nil); err != nil {
			return &publish.PartialError{Delivered: delivered, Failed: len(req),
				Err: fmt.Errorf("eventgrid %s: publish %d event(s): %w", s.name, len(req), classify(err))}
		}
		delivered += len(req)
		return nil
	})
	var bad *badEvent
	if errors.As(err, &bad) {
		return &publish.PartialError{Delivered: delivered, Failed: 1,
			Err: fmt.Errorf("eventgrid %s: event %d (id %q) not sent: %w: %w", s.name, bad.index, events[bad.index].ID(), publish.ErrRejected, bad.err)}
	}
	return err
}

// CountRequests is how many PublishCloudEvents requests Send would make for events with the default
// limits, without sending anything (for benchmarks: "requests per 1,000 changes"). An event that
// cannot be sent is an error.
func CountRequests(events []event.Event) (int, error) {
	n := 0
	err := split(events, limits{MaxRequestBytes, MaxEventBytes, MaxEvents}, func([]messaging.CloudEvent) error {
		n++
		return nil
	})
	var bad *badEvent
	if errors.As(err, &bad) {
		return n, fmt.Errorf("eventgrid.CountRequests: event %d (id %q): %w: %w", bad.index, events[bad.index].ID(), publish.ErrRejected, bad.err)
	}
	return n, err
}

// classify wraps err with its publish kind, keeping the *azcore.ResponseError (status and error code)
// reachable with errors.As.
func classify(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%w: %w", publish.ErrNotDelivered, err)
	}
	switch code := re.StatusCode; {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return fmt.Errorf("%w (%d %s): %w", publish.ErrNotDelivered, code, re.ErrorCode, err)
	case code >= 400:
		return fmt.Errorf("%w (%d %s): %w", publish.ErrRejected, code, re.ErrorCode, err)
	default:
		// Only 200 is success; a 202 or 204 from a proxy says nothing certain. Sending again is safe.
		return fmt.Errorf("%w (unexpected %d): %w", publish.ErrNotDelivered, code, err)
	}
}

// badEvent is an event that cannot be sent at all.
type badEvent struct {
	index int
	err   error
}

func (b *badEvent) Error() string { return fmt.Sprintf("event %d: %v", b.index, b.err) }

// split converts events and hands them to send in order, in requests within lim. It stops at the
// first error of send, or at an event that cannot be sent (a *badEvent, after sending the events
// before it).
func split(events []event.Event, lim limits, send func([]messaging.CloudEvent) error) error {
	var (
		req  []messaging.CloudEvent
		size = 2 // "[" and "]"
	)
	flush := func() error {
		if len(req) == 0 {
			return nil
		}
		err := send(req)
		req, size = req[:0:0], 2
		return err
	}
	for i := range events {
		ce, n, err := convertSized(&events[i])
		if err == nil && n > lim.eventBytes {
			err = fmt.Errorf("%d bytes: larger than the %d-byte event limit", n, lim.eventBytes)
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return &badEvent{i, err}
		}
		sep := 0
		if len(req) > 0 {
			sep = 1 // ","
		}
		if len(req) > 0 && (size+sep+n > lim.requestBytes || len(req) >= lim.events) {
			if err := flush(); err != nil {
				return err
			}
			sep = 0
		}
		req = append(req, ce)
		size += sep + n
	}
	return flush()
}

// convertSized converts e and measures its encoded size exactly as the SDK will encode it.
func convertSized(e *event.Event) (messaging.CloudEvent, int, error) {
	ce, err := ToCloudEvent(e)
	if err != nil {
		return ce, 0, err
	}
	b, err := ce.MarshalJSON() // what json.Marshal of the request array writes for it, byte for byte
	if err != nil {
		return ce, 0, err
	}
	return ce, len(b), nil
}

// ToCloudEvent maps an sdk-go event onto azcore's CloudEvent field by field, so that the structured
// JSON Event Grid receives is the one sdk-go writes (the JSON-lines twin's line): JSON data stays a
// JSON value ("data":{...}), base64 data stays "data_base64", other data is a string; subject,
// dataschema, datacontenttype, time and extensions are kept. (Going through json.Marshal and
// messaging.CloudEvent's UnmarshalJSON would turn JSON data into data_base64.)
func ToCloudEvent(e *event.Event) (messaging.CloudEvent, error) {
	if err := publish.Validate(e); err != nil {
		return messaging.CloudEvent{}, err
	}
	ce := messaging.CloudEvent{ID: e.ID(), Source: e.Source(), SpecVersion: e.SpecVersion(), Type: e.Type()}
	if data := e.Data(); data != nil {
		switch {
		case e.DataBase64:
			ce.Data = data // []byte: the SDK writes data_base64
		case publish.InlineJSONData(e):
			ce.Data = json.RawMessage(data)
		default:
			ce.Data = string(data)
		}
	}
	if v := e.DataContentType(); v != "" {
		ce.DataContentType = &v
	}
	if v := e.DataSchema(); v != "" {
		ce.DataSchema = &v
	}
	if v := e.Subject(); v != "" {
		ce.Subject = &v
	}
	if t := e.Time(); !t.IsZero() {
		t = t.UTC()
		ce.Time = &t
	}
	if ext := e.Extensions(); len(ext) > 0 {
		ce.Extensions = make(map[string]any, len(ext))
		for k, v := range ext {
			switch v.(type) {
			case string, bool, int32:
				ce.Extensions[k] = v // JSON string, boolean, number, as in the structured format
			default:
				// URI, URI-reference, timestamp and binary are strings in the JSON format.
				s, err := types.Format(v)
				if err != nil {
					return messaging.CloudEvent{}, fmt.Errorf("extension %q: %w", k, err)
				}
				ce.Extensions[k] = s
			}
		}
	}
	return ce, nil
}
