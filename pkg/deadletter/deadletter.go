// Package deadletter owns what happens to an event that cannot be processed now: the record kept for
// it (raw body, reason, function, position), the store interface (Blob in Azure, files locally), and
// replay once the cause is gone.
//
// Two kinds of record exist:
//   - KindPoison: the event itself is bad (not JSON, not a CloudEvent, no product, ...). Retrying it
//     cannot help; it is kept for inspection and replayed only on request (after a code fix).
//   - KindParked: the event was fine but a dependency failed on the host's last retry. Replaying it
//     once the dependency is healthy processes it normally (handlers are idempotent).
package deadletter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/contoso/eventpipeline/pkg/events"
)

// Kinds of record.
const (
	KindPoison = "poison"
	KindParked = "parked"
)

// Record is one dead-lettered event.
type Record struct {
	ID             string          `json:"id"`
	Function       string          `json:"function"`
	Kind           string          `json:"kind"`
	Reason         string          `json:"reason"`
	Source         string          `json:"source,omitempty"` // e.g. eventhub/clickstream/recently-viewed
	Partition      string          `json:"partition,omitempty"`
	SequenceNumber int64           `json:"sequenceNumber"`
	Offset         string          `json:"offset,omitempty"`
	EnqueuedTime   time.Time       `json:"enqueuedTime,omitzero"`
	Body           string          `json:"body"`
	BodyEncoding   string          `json:"bodyEncoding,omitempty"` // "base64" when the body is not UTF-8
	Properties     json.RawMessage `json:"properties,omitempty"`
	InvocationID   string          `json:"invocationId,omitempty"`
	DeadLettered   time.Time       `json:"deadLetteredAt"`
}

// SetBody stores body as text, or base64 when it is not valid UTF-8.
func (r *Record) SetBody(body []byte) {
	if utf8.Valid(body) {
		r.Body, r.BodyEncoding = string(body), ""
		return
	}
	r.Body, r.BodyEncoding = base64.StdEncoding.EncodeToString(body), "base64"
}

// RawBody returns the original body bytes.
func (r Record) RawBody() ([]byte, error) {
	if r.BodyEncoding == "base64" {
		return base64.StdEncoding.DecodeString(r.Body)
	}
	return []byte(r.Body), nil
}

// RecordID is the deterministic id of an event's record: the same event dead-lettered twice (a
// redelivered batch) overwrites one record instead of adding another.
func RecordID(function, partition string, sequenceNumber int64, body []byte) string {
	if sequenceNumber >= 0 {
		return events.DeterministicID("deadletter", function, partition, fmt.Sprint(sequenceNumber))
	}
	return events.DeterministicID("deadletter", function, partition, string(body))
}

// Store keeps dead-letter records. Put is idempotent by (Function, ID).
type Store interface {
	Put(ctx context.Context, recs ...Record) error
	// List calls fn for each record of function (all functions when empty) until fn returns an error.
	List(ctx context.Context, function string, fn func(Record) error) error
	Delete(ctx context.Context, function, id string) error
}

// Processor re-runs one record. Returning an error wrapping ErrStillPoison keeps the record (with the
// new reason); any other error stops the replay (the dependency is still failing).
type Processor func(ctx context.Context, rec Record) error

// ErrStillPoison marks a record that still cannot be processed.
var ErrStillPoison = errors.New("still not processable")

// ReplayStats counts a replay's outcome.
type ReplayStats struct {
	Replayed, StillPoison, Skipped int
}

// Replay re-processes the records of function: parked ones always, poison ones only when
// includePoison is set. A replayed record is deleted; one that is still poison is kept with its new
// reason. The first transient failure stops the replay and is returned, leaving the rest in place.
func Replay(ctx context.Context, s Store, function string, includePoison bool, process Processor) (ReplayStats, error) {
	var st ReplayStats
	var recs []Record
	if err := s.List(ctx, function, func(r Record) error { recs = append(recs, r); return nil }); err != nil {
		return st, fmt.Errorf("deadletter.Replay(%s): list: %w", function, err)
	}
	for _, r := range recs {
		if r.Kind == KindPoison && !includePoison {
			st.Skipped++
			continue
		}
		err := process(ctx, r)
		switch {
		case err == nil:
			if err := s.Delete(ctx, r.Function, r.ID); err != nil {
				return st, fmt.Errorf("deadletter.Replay(%s): delete %s: %w", function, r.ID, err)
			}
			st.Replayed++
		case errors.Is(err, ErrStillPoison):
			r.Kind, r.Reason, r.DeadLettered = KindPoison, err.Error(), time.Now().UTC()
			if err := s.Put(ctx, r); err != nil {
				return st, fmt.Errorf("deadletter.Replay(%s): update %s: %w", function, r.ID, err)
			}
			st.StillPoison++
		default:
			return st, fmt.Errorf("deadletter.Replay(%s): %s: %w", function, r.ID, err)
		}
	}
	return st, nil
}
