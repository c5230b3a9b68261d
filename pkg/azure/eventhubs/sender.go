// Package eventhubs is the Azure Event Hubs adapter: a publish.Sender on the azeventhubs (v2)
// ProducerClient that sends structured CloudEvents to one event hub, batched per partition key, and
// classifies failures as rejected or not delivered. Nothing outside this package imports azeventhubs.
package eventhubs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/Azure/go-amqp"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/azure/identity"
	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// PartitionKeyExtension is the CloudEvents partitioning extension attribute ("partitionkey"): events
// carrying the same value are sent with that Event Hubs PartitionKey, in one batch where they fit, so
// they land on one partition in the order given. Events without it are spread by Event Hubs.
const PartitionKeyExtension = "partitionkey"

// ContentType of every event body: a structured-mode CloudEvent (CloudEvents AMQP binding).
const ContentType = "application/cloudevents+json"

// DefaultConcurrency is how many partition-key batches one Send puts on the wire at once.
const DefaultConcurrency = 8

// RetryOptions is the SDK's retry policy of one operation (open a link, send a batch).
type RetryOptions = azeventhubs.RetryOptions

// RequestRetry suits a caller that is waiting (an HTTP request): two quick retries, about 1 s in all,
// instead of the SDK's default of three starting at 4 s.
var RequestRetry = RetryOptions{MaxRetries: 2, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: time.Second}

// Options tune a Sender. The zero value keeps the SDK's retry policy (3 retries starting at 4 s,
// right for background relays); request paths use RequestRetry.
type Options struct {
	Retry RetryOptions
	// Concurrency bounds the batches sent at once (DefaultConcurrency when 0).
	Concurrency int
}

// Sender publishes CloudEvents to one event hub. Safe for concurrent use; Close it on shutdown.
type Sender struct {
	hub    string
	client *azeventhubs.ProducerClient
	conc   int
}

var _ publish.Sender = (*Sender)(nil)

// NewSender connects to hub in the namespace cfg describes: with its connection string (a SAS key,
// or the emulator's UseDevelopmentEmulator=true, plain AMQP without TLS), or with Entra ID on
// cfg.Namespace (the managed identity cfg.ClientID, or the default credential chain). Nothing is sent
// until the first Send, so an unreachable namespace does not stop start-up.
func NewSender(cfg *settings.EventHubs, hub string, opts Options) (*Sender, error) {
	if cfg == nil {
		return nil, errors.New("eventhubs: no namespace configured")
	}
	co := &azeventhubs.ProducerClientOptions{RetryOptions: opts.Retry, ApplicationID: "contoso-eventpipeline"}
	var (
		c   *azeventhubs.ProducerClient
		err error
	)
	switch {
	case cfg.ConnectionString != "":
		c, err = azeventhubs.NewProducerClientFromConnectionString(cfg.ConnectionString, hub, co)
		if err != nil {
			// The SDK's message can quote the connection string; say only which setting is wrong.
			return nil, fmt.Errorf("eventhubs hub %s: %s is not a usable connection string", hub, settings.EventHubsConnection)
		}
	case cfg.Namespace != "":
		cred, cerr := identity.Credential(cfg.ClientID)
		if cerr != nil {
			return nil, fmt.Errorf("eventhubs %s: %w", cfg.Namespace, cerr)
		}
		if c, err = azeventhubs.NewProducerClient(cfg.Namespace, hub, cred, co); err != nil {
			return nil, fmt.Errorf("eventhubs %s/%s: %w", cfg.Namespace, hub, err)
		}
	default:
		return nil, errors.New("eventhubs: neither a connection string nor a namespace is configured")
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	return &Sender{hub: hub, client: c, conc: conc}, nil
}

// Hub is the event hub the sender publishes to.
func (s *Sender) Hub() string { return s.hub }

// Close releases the AMQP connection.
func (s *Sender) Close(ctx context.Context) error {
	return s.client.Close(ctx)
}

// group is the events of one partition key, in the order given.
type group struct {
	key    string
	events []int // indexes into the batch given to Send
}

// Outcome of one event in a Send.
const (
	notAttempted = iota
	delivered
	rejected
	failed // not delivered
)

type outcome struct {
	state int
	err   error
}

// Send publishes events, one batch per partition key (more if a key's events exceed the hub's
// maximum message size), with up to Concurrency batches in flight. Events of one key keep their
// order; an event the hub refuses is skipped and the key's later events are still sent.
//
// It returns nil when every event was accepted. Otherwise it returns a *publish.PartialError in the
// publish package's terms: the first Delivered events (in the order given) were delivered, the next
// Failed events failed with an error wrapping publish.ErrRejected (too large for the hub, unknown
// hub, access denied: sending them again cannot help) or publish.ErrNotDelivered (throttled, timed
// out, unreachable: try later). Events after those may or may not have been delivered (other
// partition keys run concurrently); ids are stable, so consumers de-duplicate what a retry re-sends.
func (s *Sender) Send(ctx context.Context, events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	out := make([]outcome, len(events))
	bodies := make([][]byte, len(events))
	var groups []group
	index := map[string]int{}
	for i := range events {
		e := &events[i]
		b, err := json.Marshal(e)
		if err != nil {
			out[i] = outcome{rejected, fmt.Errorf("event %s: %w", e.ID(), err)}
			continue
		}
		bodies[i] = b
		key := ""
		if v, ok := e.Extensions()[PartitionKeyExtension]; ok {
			key = fmt.Sprint(v)
		}
		gi, ok := index[key]
		if !ok {
			gi = len(groups)
			index[key] = gi
			groups = append(groups, group{key: key})
		}
		groups[gi].events = append(groups[gi].events, i)
	}

	// Keys are independent: one failing does not stop the others, so a partial failure delivers what
	// it can. A caller re-sending from the first failure re-sends some delivered events too, with
	// the same ids.
	sem := make(chan struct{}, s.conc)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.sendGroup(ctx, g, events, bodies, out)
		}()
	}
	wg.Wait()
	return s.summarize(out)
}

// summarize turns the outcomes into Send's result.
func (s *Sender) summarize(out []outcome) error {
	d := 0
	for d < len(out) && out[d].state == delivered {
		d++
	}
	if d == len(out) {
		return nil
	}
	// The cause to report for events that were never attempted: the failure that stopped the send.
	var cause error
	for _, o := range out {
		if o.err != nil && !errors.Is(o.err, context.Canceled) {
			cause = o.err
			break
		}
	}
	if cause == nil {
		cause = context.Canceled
	}
	kind := publish.ErrNotDelivered
	if out[d].state == rejected {
		kind = publish.ErrRejected
	}
	f := 0
	for d+f < len(out) && out[d+f].state != delivered && (out[d+f].state == rejected) == (kind == publish.ErrRejected) {
		f++
	}
	err := out[d].err
	if err == nil || errors.Is(err, context.Canceled) {
		err = cause
	}
	return &publish.PartialError{Delivered: d, Failed: f,
		Err: fmt.Errorf("eventhubs.Send(%s): %w: %w", s.hub, kind, err)}
}

// sendGroup sends the events of one key in as few batches as the hub's message size allows, in
// order, recording each event's outcome; it stops at the first batch that fails. NewEventDataBatch
// opens the link on first use, then reads its maximum message size.
func (s *Sender) sendGroup(ctx context.Context, g group, events []event.Event, bodies [][]byte, out []outcome) {
	opts := &azeventhubs.EventDataBatchOptions{}
	if g.key != "" {
		key := g.key
		opts.PartitionKey = &key
	}
	ct := ContentType
	var (
		batch   *azeventhubs.EventDataBatch
		inBatch []int
	)
	// stop marks the events of the batch in flight and every event not yet added with err: rejected
	// when it is a refusal of the destination itself (unknown hub, access denied), which the key's
	// other events would meet too; not delivered otherwise.
	stop := func(from int, err error) {
		state := failed
		if Classify(err) == publish.ErrRejected {
			state = rejected
		}
		for _, i := range inBatch {
			out[i] = outcome{state, err}
		}
		for _, i := range g.events[from:] {
			out[i] = outcome{state, err}
		}
	}
	flush := func(next int) bool {
		if err := s.client.SendEventDataBatch(ctx, batch, nil); err != nil {
			stop(next, err)
			return false
		}
		for _, i := range inBatch {
			out[i] = outcome{delivered, nil}
		}
		batch, inBatch = nil, inBatch[:0]
		return true
	}
	for n, i := range g.events {
		if batch == nil {
			var err error
			if batch, err = s.client.NewEventDataBatch(ctx, opts); err != nil {
				stop(n, err)
				return
			}
		}
		id := events[i].ID()
		ed := &azeventhubs.EventData{Body: bodies[i], ContentType: &ct, MessageID: &id}
		err := batch.AddEventData(ed, nil)
		if errors.Is(err, azeventhubs.ErrEventDataTooLarge) && batch.NumEvents() > 0 {
			if !flush(n) {
				return
			}
			if batch, err = s.client.NewEventDataBatch(ctx, opts); err != nil {
				stop(n, err)
				return
			}
			err = batch.AddEventData(ed, nil)
		}
		if errors.Is(err, azeventhubs.ErrEventDataTooLarge) {
			// Too large even alone: refuse this event, send the key's others.
			out[i] = outcome{rejected, fmt.Errorf("event %s (%d bytes): %w", id, len(bodies[i]), err)}
			continue
		}
		if err != nil {
			stop(n, err)
			return
		}
		inBatch = append(inBatch, i)
	}
	if len(inBatch) > 0 {
		flush(len(g.events))
	}
}

// Classify tells whether a send error is worth retrying: publish.ErrRejected when the events or the
// destination are wrong (too large, unknown hub, access denied), publish.ErrNotDelivered otherwise
// (server busy, timeouts, lost connections, cancelled). Unknown errors count as not delivered, so
// that work is retried rather than dropped.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, publish.ErrRejected) {
		return publish.ErrRejected
	}
	if errors.Is(err, azeventhubs.ErrEventDataTooLarge) {
		return publish.ErrRejected
	}
	var ehErr *azeventhubs.Error
	if errors.As(err, &ehErr) {
		if ehErr.Code == azeventhubs.ErrorCodeUnauthorizedAccess {
			return publish.ErrRejected
		}
		return publish.ErrNotDelivered
	}
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		switch amqpErr.Condition {
		case amqp.ErrCondNotFound, amqp.ErrCondUnauthorizedAccess, amqp.ErrCondNotAllowed,
			amqp.ErrCondMessageSizeExceeded, amqp.ErrCondDecodeError, amqp.ErrCondInvalidField,
			amqp.ErrCondNotImplemented, "com.microsoft:entity-disabled", "com.microsoft:argument-out-of-range",
			"com.microsoft:argument-error":
			return publish.ErrRejected
		}
		return publish.ErrNotDelivered // server-busy, timeout, internal-error, resource-limit-exceeded, ...
	}
	// Deadlines, cancellation, io.EOF, net.Error, go-amqp's ConnError/LinkError/SessionError and
	// anything unknown.
	return publish.ErrNotDelivered
}
