package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// Kinds of outbox documents.
const (
	// KindParked: not delivered yet; Relay re-sends it.
	KindParked = "parked"
	// KindRejected: the destination refused it; kept for inspection and never re-sent automatically
	// (Requeue turns it back into KindParked after a fix).
	KindRejected = "rejected"
)

// ParkedEvent is one outbox document: one event waiting for (or refused by) one destination. In
// Cosmos DB it lives in the "outbox" container, partition key /topic.
type ParkedEvent struct {
	ID    string `json:"id"`    // the event id, or a hash of it when Cosmos DB cannot take it as an id
	Topic string `json:"topic"` // the destination: a topic or hub name (the partition key)
	Kind  string `json:"kind"`
	// The event's identity, for inspection and to tell apart two events that share an id.
	EventID string `json:"eventId"`
	Source  string `json:"source"`
	Type    string `json:"type"`
	// Event is the structured CloudEvent JSON, exactly as the JSON-lines twin would write it.
	Event    json.RawMessage `json:"event"`
	ParkedAt time.Time       `json:"parkedAt"`
	Seq      int             `json:"seq"` // position within its Park call, so events parked together keep their order
	Reason   string          `json:"reason"`
	Attempts int             `json:"attempts"` // failed sends, the original one included
}

// Store is an Outbox that also keeps the events a destination rejected, for inspection. A
// Publisher needs both; DocOutbox is one.
type Store interface {
	Outbox
	ParkRejected(ctx context.Context, destination string, events []event.Event, reason string) error
}

// Defaults of DocOutbox.
const (
	DefaultRelayBatch = 500
	DefaultRelayLimit = 5000
	maxReason         = 1024
)

// DocOutbox is the durable Outbox on a docstore.Collection (Cosmos DB in Azure, the embedded store
// locally): one document per event, partitioned by destination. Safe for concurrent use. Two relays
// of one destination running at once may send an event twice (with the same id), never lose one.
type DocOutbox struct {
	Docs docstore.Collection[ParkedEvent]
	// RelayBatch is how many events one Relay hands to the Sender at a time (the Sender splits further
	// within its own limits); RelayLimit how many parked events one Relay run handles at most, so a
	// long outage's backlog drains over several timer ticks instead of outliving one invocation.
	RelayBatch, RelayLimit int
	Now                    func() time.Time
}

var _ Store = (*DocOutbox)(nil)

// NewOutbox returns a DocOutbox on docs with the default limits.
func NewOutbox(docs docstore.Collection[ParkedEvent]) *DocOutbox {
	return &DocOutbox{Docs: docs, RelayBatch: DefaultRelayBatch, RelayLimit: DefaultRelayLimit, Now: time.Now}
}

func (o *DocOutbox) now() time.Time {
	if o.Now == nil {
		return time.Now().UTC()
	}
	return o.Now().UTC()
}

// Park implements Outbox. An event already in the outbox (same id and source) is left as it is, with
// its original position, so parking the same batch again adds nothing.
func (o *DocOutbox) Park(ctx context.Context, destination string, events []event.Event, reason string) error {
	return o.park(ctx, destination, events, reason, KindParked)
}

// ParkRejected keeps events the destination refused, with the reason, for inspection. Relay skips
// them; an event parked earlier and rejected now is turned into a rejected one.
func (o *DocOutbox) ParkRejected(ctx context.Context, destination string, events []event.Event, reason string) error {
	return o.park(ctx, destination, events, reason, KindRejected)
}

func (o *DocOutbox) park(ctx context.Context, destination string, events []event.Event, reason, kind string) error {
	at := o.now()
	reason = truncate(reason, maxReason)
	for i := range events {
		e := &events[i]
		raw, err := json.Marshal(e)
		if err != nil {
			// An event that cannot even be encoded cannot be stored; failing loudly keeps it visible.
			return fmt.Errorf("publish.Park(%s): event %q: %w", destination, e.ID(), err)
		}
		doc := ParkedEvent{
			ID: docID(e.ID()), Topic: destination, Kind: kind, EventID: e.ID(), Source: e.Source(), Type: e.Type(),
			Event: raw, ParkedAt: at, Seq: i, Reason: reason, Attempts: 1,
		}
		if err := o.put(ctx, doc); err != nil {
			return fmt.Errorf("publish.Park(%s): event %q: %w", destination, e.ID(), err)
		}
	}
	return nil
}

// put stores doc unless the same event is already there. Rejected wins over parked (a retry cannot
// help it); otherwise the first document is kept with its original position.
func (o *DocOutbox) put(ctx context.Context, doc ParkedEvent) error {
	for range 4 {
		_, err := o.Docs.Put(ctx, doc.Topic, doc.ID, doc, docstore.PutOptions{IfNoneMatch: true})
		if !errors.Is(err, docstore.ErrConflict) {
			return err
		}
		old, etag, err := o.Docs.Get(ctx, doc.Topic, doc.ID)
		if errors.Is(err, docstore.ErrNotFound) {
			continue // relayed and deleted in between: create it again
		} else if err != nil {
			return err
		}
		if old.EventID != doc.EventID || old.Source != doc.Source {
			// Another event with the same id (ids are unique per source only): its own document.
			doc.ID = "sha256-" + hashHex(doc.Source+"\x00"+doc.EventID)
			continue
		}
		if old.Kind == KindRejected || doc.Kind != KindRejected {
			return nil
		}
		old.Kind, old.Reason = KindRejected, doc.Reason
		_, err = o.Docs.Put(ctx, doc.Topic, doc.ID, old, docstore.PutOptions{IfMatch: etag})
		if !errors.Is(err, docstore.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("outbox document %s/%s changed concurrently: %w", doc.Topic, doc.ID, docstore.ErrConflict)
}

// Relay implements Outbox: the oldest parked events of destination (up to RelayLimit) are re-sent
// through s in batches of RelayBatch. Delivered ones are deleted; rejected ones are kept as
// KindRejected with the reason and counted; the first not-delivered failure stops the run (the
// destination is still down) and is returned, wrapping ErrNotDelivered.
func (o *DocOutbox) Relay(ctx context.Context, destination string, s Sender) (RelayStats, error) {
	var st RelayStats
	var parked []ParkedEvent
	err := o.Docs.List(ctx, destination, func(_ string, d ParkedEvent, _ docstore.ETag) error {
		if d.Kind == KindRejected {
			st.Held++
		} else {
			parked = append(parked, d)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("publish.Relay(%s): list: %w", destination, err)
	}
	slices.SortStableFunc(parked, func(a, b ParkedEvent) int {
		if c := a.ParkedAt.Compare(b.ParkedAt); c != 0 {
			return c
		}
		return a.Seq - b.Seq
	})
	st.Remaining = len(parked)
	if limit := o.RelayLimit; limit > 0 && len(parked) > limit {
		parked = parked[:limit]
	}
	batch := o.RelayBatch
	if batch <= 0 {
		batch = DefaultRelayBatch
	}
	for len(parked) > 0 {
		n := min(batch, len(parked))
		if err := o.relayBatch(ctx, destination, s, parked[:n], &st); err != nil {
			return st, err
		}
		parked = parked[n:]
	}
	return st, nil
}

func (o *DocOutbox) relayBatch(ctx context.Context, destination string, s Sender, docs []ParkedEvent, st *RelayStats) error {
	events := make([]event.Event, 0, len(docs))
	ok := docs[:0:0]
	for _, d := range docs {
		var e event.Event
		if err := json.Unmarshal(d.Event, &e); err != nil {
			// Stored by this code, so this means corruption: keep it for inspection, do not block the rest.
			if err := o.reject(ctx, d, "stored event cannot be decoded: "+err.Error()); err != nil {
				return fmt.Errorf("publish.Relay(%s): %w", destination, err)
			}
			st.Rejected++
			st.Held++
			st.Remaining--
			continue
		}
		events = append(events, e)
		ok = append(ok, d)
	}
	res := deliver(ctx, s, events, deliveryHooks{
		delivered: func(from, to int) error {
			for _, d := range ok[from:to] {
				if err := o.Docs.Delete(ctx, d.Topic, d.ID); err != nil {
					// Delivered but still parked: the next run sends it again, with the same id.
					return err
				}
				st.Delivered++
				st.Remaining--
			}
			return nil
		},
		rejected: func(from, to int, err error) error {
			for _, d := range ok[from:to] {
				if err := o.reject(ctx, d, err.Error()); err != nil {
					return err
				}
				st.Rejected++
				st.Held++
				st.Remaining--
			}
			return nil
		},
	})
	if res.storeErr != nil {
		return fmt.Errorf("publish.Relay(%s): %w", destination, res.storeErr)
	}
	if res.sendErr == nil {
		return nil
	}
	// Count the attempt on the events of the request that failed, for inspection. A failure to record
	// it changes nothing that matters: the events stay parked either way.
	for _, d := range ok[res.next:min(res.next+res.failed, len(ok))] {
		d.Attempts++
		d.Reason = truncate(res.sendErr.Error(), maxReason)
		_, _ = o.Docs.Put(ctx, d.Topic, d.ID, d, docstore.PutOptions{})
	}
	return fmt.Errorf("publish.Relay(%s): %w", destination, res.sendErr)
}

func (o *DocOutbox) reject(ctx context.Context, d ParkedEvent, reason string) error {
	d.Kind, d.Reason = KindRejected, truncate(reason, maxReason)
	d.Attempts++
	if _, err := o.Docs.Put(ctx, d.Topic, d.ID, d, docstore.PutOptions{}); err != nil {
		return fmt.Errorf("mark %s rejected: %w", d.EventID, err)
	}
	return nil
}

// Requeue turns the rejected events of destination back into parked ones, for the next Relay to
// send: after the cause was fixed (a role assignment, the topic's input schema, a corrected event).
// It returns how many were requeued.
func (o *DocOutbox) Requeue(ctx context.Context, destination string) (int, error) {
	var rejected []ParkedEvent
	err := o.Docs.List(ctx, destination, func(_ string, d ParkedEvent, _ docstore.ETag) error {
		if d.Kind == KindRejected {
			rejected = append(rejected, d)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("publish.Requeue(%s): %w", destination, err)
	}
	for i, d := range rejected {
		d.Kind = KindParked
		if _, err := o.Docs.Put(ctx, d.Topic, d.ID, d, docstore.PutOptions{}); err != nil {
			return i, fmt.Errorf("publish.Requeue(%s): %w", destination, err)
		}
	}
	return len(rejected), nil
}

// docID is the document id for an event id. Cosmos DB ids cannot hold '/', '\', '?' or '#' and are at
// most 255 characters; this project's ids are UUIDs, but the outbox must take any event.
func docID(eventID string) string {
	if eventID != "" && len(eventID) <= 255 && !strings.ContainsAny(eventID, "/\\?#") && !hasControl(eventID) {
		return eventID
	}
	return "sha256-" + hashHex(eventID)
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:20])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the stored JSON stays valid UTF-8.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
