// Package clickstream turns raw clickstream events (from an Event Hubs batch or a Capture file) into
// decoded clicks, dead-letter records for the malformed ones, and a count of events of other types.
// Every clickstream consumer uses it, so the rules for "malformed" and "skipped" are the same
// everywhere.
package clickstream

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/events"
	"github.com/contoso/eventpipeline/pkg/recent"
)

// Raw is one event as delivered, with its position in the hub.
type Raw struct {
	Body           []byte
	Properties     events.Properties // binary-mode attributes, decoded on demand
	RawProperties  json.RawMessage   // kept in dead-letter records
	Partition      string
	SequenceNumber int64
	Offset         string
	EnqueuedTime   time.Time
}

// Click is a decoded click with the position it came from.
type Click struct {
	events.Click
	Partition      string
	SequenceNumber int64
}

// Decoded is the outcome of decoding a batch.
type Decoded struct {
	Clicks  []Click
	Poison  []deadletter.Record
	Skipped int // valid CloudEvents of other types
}

// Source names where the events come from, for dead-letter records.
type Source struct {
	Function     string
	Name         string // e.g. "eventhub/clickstream/recently-viewed"
	InvocationID string
}

// MaxClockSkew is how far after its enqueued time a click's own time may be. A later time comes from
// a wrong client clock; it would pin the product to the top of a recently-viewed list (and into a
// future trend bucket) for as long as the skew, so the enqueued time is used instead.
const MaxClockSkew = 5 * time.Minute

// Decode decodes raws. A click needs a product and a viewer whose id is usable as a key; anything
// else that is not a CloudEvent of another type is poison.
func Decode(src Source, raws []Raw, now time.Time) Decoded {
	d := Decoded{Clicks: make([]Click, 0, len(raws))}
	for i := range raws {
		r := &raws[i]
		c, err := events.DecodeClick(r.Body, r.Properties, r.EnqueuedTime)
		if err == nil {
			err = recent.ValidateViewer(c.Viewer())
		}
		switch {
		case err == nil:
			if !r.EnqueuedTime.IsZero() && c.Time.After(r.EnqueuedTime.Add(MaxClockSkew)) {
				c.Time = r.EnqueuedTime
			}
			d.Clicks = append(d.Clicks, Click{Click: c, Partition: r.Partition, SequenceNumber: r.SequenceNumber})
		case errors.Is(err, events.ErrOtherType):
			d.Skipped++
		default:
			d.Poison = append(d.Poison, Record(src, r, deadletter.KindPoison, err.Error(), now))
		}
	}
	return d
}

// Record builds the dead-letter record of r.
func Record(src Source, r *Raw, kind, reason string, now time.Time) deadletter.Record {
	rec := deadletter.Record{
		ID:       deadletter.RecordID(src.Function, r.Partition, r.SequenceNumber, r.Body),
		Function: src.Function, Kind: kind, Reason: reason, Source: src.Name,
		Partition: r.Partition, SequenceNumber: r.SequenceNumber, Offset: r.Offset,
		EnqueuedTime: r.EnqueuedTime, Properties: r.RawProperties, InvocationID: src.InvocationID,
		DeadLettered: now.UTC(),
	}
	rec.SetBody(r.Body)
	return rec
}

// FromRecord rebuilds the raw event of a dead-letter record, for replay.
func FromRecord(rec deadletter.Record) (Raw, error) {
	body, err := rec.RawBody()
	if err != nil {
		return Raw{}, err
	}
	r := Raw{Body: body, RawProperties: rec.Properties, Partition: rec.Partition,
		SequenceNumber: rec.SequenceNumber, Offset: rec.Offset, EnqueuedTime: rec.EnqueuedTime}
	if len(rec.Properties) > 0 {
		props := rec.Properties
		r.Properties = func() (map[string]any, error) {
			var m map[string]any
			err := json.Unmarshal(props, &m)
			return m, err
		}
	}
	return r, nil
}

// ViewsByViewer groups the product views of clicks by viewer, for one read-modify-write each.
func ViewsByViewer(clicks []Click) map[string][]recent.Item {
	out := make(map[string][]recent.Item, len(clicks))
	for i := range clicks {
		c := &clicks[i]
		if c.Type != events.TypeProductViewed {
			continue
		}
		v := c.Viewer()
		out[v] = append(out[v], recent.Item{ProductID: c.ProductID, ViewedAt: c.Time})
	}
	return out
}
