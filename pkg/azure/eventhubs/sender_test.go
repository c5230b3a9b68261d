package eventhubs

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/Azure/go-amqp"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/internal/standins"
	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// recorded is one event as the ehfake stand-in saw it (GET /events).
type recorded struct {
	Hub            string `json:"hub"`
	Partition      string `json:"partition"`
	PartitionKey   string `json:"partitionKey"`
	Body           string `json:"body"`
	ContentType    string `json:"contentType"`
	MessageID      string `json:"messageId"`
	SequenceNumber int64  `json:"sequenceNumber"`
}

type fake struct {
	t     *testing.T
	admin string
	conn  string
	run   string // unique per test: every partition key and id starts with it
}

func newFake(t *testing.T) *fake {
	return &fake{t: t, conn: standins.Require(t, "STANDINS_EVENTHUBS_CONNECTION"), admin: standins.Require(t, "STANDINS_EVENTHUBS_ADMIN"),
		run: strings.ToLower(rand.Text()[:10])}
}

func (f *fake) sender(hub string, opts Options) *Sender {
	f.t.Helper()
	s, err := NewSender(&settings.EventHubs{ConnectionString: f.conn}, hub, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// events returns what the fake recorded on hub for this test's run, in arrival order.
func (f *fake) events(hub string) []recorded {
	f.t.Helper()
	res, err := http.Get(f.admin + "/events?hub=" + url.QueryEscape(hub))
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	var all []recorded
	if err := json.NewDecoder(res.Body).Decode(&all); err != nil {
		f.t.Fatal(err)
	}
	var mine []recorded
	for _, r := range all {
		if strings.HasPrefix(r.MessageID, f.run) {
			mine = append(mine, r)
		}
	}
	return mine
}

// fail makes the next count sends of partition key key on hub fail with condition.
func (f *fake) fail(hub, key, condition string, count int) {
	f.t.Helper()
	q := url.Values{"count": {strconv.Itoa(count)}, "hub": {hub}, "partitionKey": {key}, "condition": {condition}}
	res, err := http.Post(f.admin+"/fail?"+q.Encode(), "", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		f.t.Fatalf("POST /fail: %s", res.Status)
	}
}

func testEvent(t *testing.T, id, key string, data any) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource("/tests/eventhubs")
	e.SetType("com.contoso.test.sent")
	e.SetTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	if key != "" {
		e.SetExtension(PartitionKeyExtension, key)
	}
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSendGroupsByPartitionKey(t *testing.T) {
	f := newFake(t)
	s := f.sender(settings.HubFeedback, Options{})
	var evs []event.Event
	keys := []string{f.run + "-a", f.run + "-b", "", f.run + "-a", f.run + "-b", f.run + "-a"}
	for i, k := range keys {
		evs = append(evs, testEvent(t, fmt.Sprintf("%s-%02d", f.run, i), k, map[string]int{"n": i}))
	}
	if err := s.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	got := f.events(settings.HubFeedback)
	if len(got) != len(evs) {
		t.Fatalf("fake recorded %d events, want %d", len(got), len(evs))
	}
	byID := map[string]recorded{}
	for _, r := range got {
		byID[r.MessageID] = r
	}
	partitionOf := map[string]string{}
	lastSeq := map[string]int64{}
	for i, e := range evs {
		r, ok := byID[e.ID()]
		if !ok {
			t.Fatalf("event %s not recorded", e.ID())
		}
		want, _ := json.Marshal(e)
		if diff := cmp.Diff(string(want), r.Body); diff != "" {
			t.Errorf("event %d body (-want +got):\n%s", i, diff)
		}
		if r.ContentType != ContentType {
			t.Errorf("event %d content type %q, want %q", i, r.ContentType, ContentType)
		}
		if r.PartitionKey != keys[i] {
			t.Errorf("event %d partition key %q, want %q", i, r.PartitionKey, keys[i])
		}
		if keys[i] == "" {
			continue
		}
		if p, seen := partitionOf[keys[i]]; seen && p != r.Partition {
			t.Errorf("key %s went to partitions %s and %s", keys[i], p, r.Partition)
		}
		partitionOf[keys[i]] = r.Partition
		if r.SequenceNumber <= lastSeq[keys[i]] && lastSeq[keys[i]] != 0 {
			t.Errorf("key %s: event %d out of order (sequence %d after %d)", keys[i], i, r.SequenceNumber, lastSeq[keys[i]])
		}
		lastSeq[keys[i]] = r.SequenceNumber
	}
	// A structured CloudEvent body decodes back to the same event.
	var back event.Event
	if err := json.Unmarshal([]byte(byID[evs[0].ID()].Body), &back); err != nil || back.ID() != evs[0].ID() || string(back.Data()) != `{"n":0}` {
		t.Errorf("body does not decode to the event: %v %v", err, back)
	}
}

func TestSendSplitsWhatExceedsOneMessage(t *testing.T) {
	f := newFake(t)
	s := f.sender(settings.HubFeedback, Options{})
	big := strings.Repeat("x", 300<<10) // four of these exceed the fake's 1 MiB message size
	var evs []event.Event
	for i := range 5 {
		evs = append(evs, testEvent(t, fmt.Sprintf("%s-%d", f.run, i), f.run+"-big", map[string]string{"pad": big}))
	}
	if err := s.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	got := f.events(settings.HubFeedback)
	if len(got) != 5 {
		t.Fatalf("recorded %d events, want 5", len(got))
	}
	for i, r := range got {
		if want := evs[i].ID(); r.MessageID != want {
			t.Errorf("arrival %d is %s, want %s (order within a key must hold across batches)", i, r.MessageID, want)
		}
	}
}

func TestSendClassifiesFailures(t *testing.T) {
	f := newFake(t)
	fast := Options{Retry: azeventhubs.RetryOptions{MaxRetries: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond}}
	tests := []struct {
		name      string
		hub       string
		condition string // injected by the fake for the test's key
		count     int
		data      any
		want      error // nil: delivered
	}{
		{name: "server busy, retried by the SDK until delivered", hub: settings.HubFeedback, condition: "com.microsoft:server-busy", count: 1, want: nil},
		{name: "server busy beyond the retries", hub: settings.HubFeedback, condition: "com.microsoft:server-busy", count: 5, want: publish.ErrNotDelivered},
		{name: "internal error", hub: settings.HubFeedback, condition: "amqp:internal-error", count: 5, want: publish.ErrNotDelivered},
		{name: "unauthorized", hub: settings.HubFeedback, condition: "amqp:unauthorized-access", count: 1, want: publish.ErrRejected},
		{name: "unknown hub", hub: "no-such-hub", want: publish.ErrRejected},
		{name: "event larger than a message", hub: settings.HubFeedback, data: map[string]string{"pad": strings.Repeat("x", 2<<20)}, want: publish.ErrRejected},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("%s-fault-%d", f.run, i)
			if tt.condition != "" {
				f.fail(tt.hub, key, tt.condition, tt.count)
				t.Cleanup(func() {
					// Use up what the test did not, so no rule outlives it.
					s := f.sender(tt.hub, Options{Retry: azeventhubs.RetryOptions{MaxRetries: -1}})
					for range tt.count {
						_ = s.Send(context.Background(), []event.Event{testEvent(t, f.run+"-drain", key, 1)})
					}
				})
			}
			s := f.sender(tt.hub, fast)
			data := tt.data
			if data == nil {
				data = map[string]int{"n": i}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := s.Send(ctx, []event.Event{testEvent(t, fmt.Sprintf("%s-f%d", f.run, i), key, data)})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send error = %v, want %v", err, tt.want)
			}
			other := publish.ErrRejected
			if tt.want == publish.ErrRejected {
				other = publish.ErrNotDelivered
			}
			if errors.Is(err, other) {
				t.Fatalf("Send error %v is both rejected and not delivered", err)
			}
		})
	}
}

// TestSendReportsProgress checks the publish.PartialError contract: what was delivered before the
// first failure, and what failed, in the order given, while the other keys still get through.
func TestSendReportsProgress(t *testing.T) {
	f := newFake(t)
	s := f.sender(settings.HubFeedback, Options{Retry: azeventhubs.RetryOptions{MaxRetries: -1}})
	ka, kb := f.run+"-ok", f.run+"-busy"
	f.fail(settings.HubFeedback, kb, "com.microsoft:server-busy", 1)
	huge := map[string]string{"pad": strings.Repeat("x", 2<<20)}
	evs := []event.Event{
		testEvent(t, f.run+"-0", ka, 0),
		testEvent(t, f.run+"-1", ka, huge), // refused alone; the key's next event still goes
		testEvent(t, f.run+"-2", ka, 2),
		testEvent(t, f.run+"-3", kb, 3), // its batch meets server-busy
		testEvent(t, f.run+"-4", ka, 4),
	}
	err := s.Send(context.Background(), evs)
	var pe *publish.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Send error %v is not a *publish.PartialError", err)
	}
	if pe.Delivered != 1 || pe.Failed != 1 || !errors.Is(err, publish.ErrRejected) {
		t.Fatalf("got %d delivered then %d failed (%v), want 1 delivered then 1 rejected", pe.Delivered, pe.Failed, err)
	}
	var ids []string
	for _, r := range f.events(settings.HubFeedback) {
		ids = append(ids, r.MessageID)
	}
	if diff := cmp.Diff([]string{f.run + "-0", f.run + "-2", f.run + "-4"}, ids); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	// The rest of the batch, from the first event that failed: now the not-delivered one comes first.
	err = s.Send(context.Background(), evs[2:])
	if err != nil {
		t.Fatalf("re-send after the fault: %v", err)
	}
	err = s.Send(context.Background(), evs[1:2])
	if !errors.As(err, &pe) || pe.Delivered != 0 || pe.Failed != 1 || !errors.Is(err, publish.ErrRejected) {
		t.Fatalf("too large alone: %v", err)
	}
}

func TestSendUnreachableIsNotDelivered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	conn := "Endpoint=sb://" + addr + ";SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true"
	s, err := NewSender(&settings.EventHubs{ConnectionString: conn}, settings.HubFeedback, Options{Retry: azeventhubs.RetryOptions{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = s.Send(ctx, []event.Event{testEvent(t, "unreachable-1", "k", 1)})
	if !errors.Is(err, publish.ErrNotDelivered) {
		t.Fatalf("Send to a closed port: %v, want ErrNotDelivered", err)
	}
}

// TestSendLive runs against a real namespace or the Event Hubs emulator when EventHubsConnection (or
// EventHubsConnection__fullyQualifiedNamespace with Entra ID) is set, on the hub "feedback".
func TestSendLive(t *testing.T) {
	cfg, err := settings.Load(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EventHubs == nil {
		t.Skip("EventHubsConnection is not set: no live namespace or emulator to test against")
	}
	s, err := NewSender(cfg.EventHubs, settings.HubFeedback, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	run := strings.ToLower(rand.Text()[:10])
	var evs []event.Event
	for i := range 3 {
		evs = append(evs, testEvent(t, fmt.Sprintf("%s-live-%d", run, i), run+"-live", map[string]int{"n": i}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Send(ctx, evs); err != nil {
		t.Fatal(err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{azeventhubs.ErrEventDataTooLarge, publish.ErrRejected},
		{&azeventhubs.Error{Code: azeventhubs.ErrorCodeUnauthorizedAccess}, publish.ErrRejected},
		{&azeventhubs.Error{Code: azeventhubs.ErrorCodeConnectionLost}, publish.ErrNotDelivered},
		{&amqp.Error{Condition: amqp.ErrCondNotFound}, publish.ErrRejected},
		{fmt.Errorf("wrapped: %w", &amqp.Error{Condition: amqp.ErrCondMessageSizeExceeded}), publish.ErrRejected},
		{&amqp.Error{Condition: "com.microsoft:entity-disabled"}, publish.ErrRejected},
		{&amqp.Error{Condition: "com.microsoft:server-busy"}, publish.ErrNotDelivered},
		{&amqp.Error{Condition: "com.microsoft:timeout"}, publish.ErrNotDelivered},
		{&amqp.Error{Condition: amqp.ErrCondResourceLimitExceeded}, publish.ErrNotDelivered},
		{&amqp.ConnError{}, publish.ErrNotDelivered},
		{context.DeadlineExceeded, publish.ErrNotDelivered},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, publish.ErrNotDelivered},
		{errors.New("something new"), publish.ErrNotDelivered},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
}
