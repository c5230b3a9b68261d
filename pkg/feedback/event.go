package feedback

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/events"
)

// PartitionKeyExtension is the CloudEvents partitioning extension attribute. The Event Hubs sender
// sends the events of one key in one batch with that PartitionKey, so they land on one partition in
// order.
//
// The key of feedback is its subject (/products/<id>, /orders/<id> or /customers/<ref>): all
// feedback about one product, or about one order, stays in order for every consumer, while different
// products spread evenly over the partitions. Keying by partner would keep a partner's stream in order
// but put a large partner on a single hot partition; ordering across partners means nothing anyway.
const PartitionKeyExtension = "partitionkey"

// IdempotencyKeyExtension carries the partner's own id (the CloudEvent id or Idempotency-Key they
// sent), so consumers can correlate with the partner's records.
const IdempotencyKeyExtension = "idempotencykey"

// Source is the CloudEvent source of feedback from partner.
func Source(partner string) string { return "/partners/" + partner }

// Type is the CloudEvent type of feedback of kind.
func Type(kind string) string {
	if kind == KindProduct {
		return TypeProductSubmitted
	}
	return TypeCustomerSubmitted
}

// EventID is the id of the event published for the partner's idempotency key: derived from both, so
// a retried request publishes (if at all) the same id, and consumers can de-duplicate by it.
func EventID(partner, key string) string {
	return events.DeterministicID("feedback", partner, key)
}

// built is one submission turned into its CloudEvent.
type built struct {
	event event.Event
	// fingerprint identifies the content (type, subject, data) regardless of the receive time, to
	// tell a true retry from an idempotency key reused for different feedback.
	fingerprint string
}

// build makes the CloudEvent for s from partner. id is its event id; received is used as the event
// time when the partner gave none.
func (s *Submission) build(partner, id string, received time.Time) (built, error) {
	f := s.Feedback
	f.PartnerID = partner
	data, err := json.Marshal(f)
	if err != nil {
		return built{}, fmt.Errorf("feedback: encode data: %w", err)
	}
	subject := f.Subject()
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(id)
	e.SetSource(Source(partner))
	e.SetType(Type(f.Kind))
	e.SetSubject(subject)
	t := received
	if f.SubmittedAt != nil {
		t = *f.SubmittedAt
	}
	e.SetTime(t.UTC())
	e.SetExtension(PartitionKeyExtension, subject)
	if s.Key != "" {
		e.SetExtension(IdempotencyKeyExtension, s.Key)
	}
	e.SetDataContentType(event.ApplicationJSON)
	e.DataEncoded = data
	if err := e.Validate(); err != nil {
		return built{}, fmt.Errorf("feedback: event %s: %w", id, err)
	}
	h := sha256.New()
	h.Write([]byte(e.Type()))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write(data)
	return built{event: e, fingerprint: hex.EncodeToString(h.Sum(nil))}, nil
}
