package protocol

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// PartitionContext identifies the Event Hubs partition a batch came from.
type PartitionContext struct {
	FullyQualifiedNamespace string `json:"FullyQualifiedNamespace"`
	EventHubName            string `json:"EventHubName"`
	ConsumerGroup           string `json:"ConsumerGroup"`
	PartitionID             string `json:"PartitionId"`
}

// EventHubEvent is one event of a cardinality-many batch, with the position metadata the handler
// needs to de-duplicate, order and dead-letter it.
type EventHubEvent struct {
	Index          int
	Body           []byte
	SequenceNumber int64
	Offset         string
	EnqueuedTime   time.Time
	PartitionKey   string
	// properties is the raw application-properties object, decoded on demand (binary-mode
	// CloudEvents need it; structured ones do not).
	properties json.RawMessage
}

// Properties decodes the event's application properties. Most events never need them.
func (e *EventHubEvent) Properties() (map[string]any, error) {
	if len(e.properties) == 0 || string(e.properties) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(e.properties, &m); err != nil {
		return nil, fmt.Errorf("%w: PropertiesArray[%d]: %v", ErrMalformed, e.Index, err)
	}
	return m, nil
}

// RawProperties returns the undecoded application properties (for dead-letter records).
func (e *EventHubEvent) RawProperties() json.RawMessage { return e.properties }

// EventHubBatch is a decoded eventHubTrigger invocation with cardinality "many".
type EventHubBatch struct {
	Partition PartitionContext
	Events    []EventHubEvent
}

// DecodeEventHubBatch decodes Data.<binding> and the batch metadata. Data is a string holding a JSON
// array; with "dataType": "string" its elements are strings holding each body's exact text, without
// a dataType they are the parsed bodies, and with "dataType": "binary" base64 strings (pass binary
// true). Metadata arrays (SequenceNumberArray, EnqueuedTimeUtcArray, ...) are strings holding JSON.
func DecodeEventHubBatch(req *Request, binding string, binary bool) (*EventHubBatch, error) {
	raw, err := req.Binding(binding)
	if err != nil {
		return nil, err
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return nil, fmt.Errorf("%w: Data.%s: want a string holding a JSON array: %v", ErrMalformed, binding, err)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal([]byte(text), &elems); err != nil {
		return nil, fmt.Errorf("%w: Data.%s: not a JSON array: %v", ErrMalformed, binding, err)
	}
	b := &EventHubBatch{Events: make([]EventHubEvent, len(elems))}
	for i, el := range elems {
		ev := &b.Events[i]
		ev.Index = i
		if len(el) > 0 && el[0] == '"' {
			var s string
			if err := json.Unmarshal(el, &s); err != nil {
				return nil, fmt.Errorf("%w: Data.%s[%d]: %v", ErrMalformed, binding, i, err)
			}
			if binary {
				body, err := decodeBase64(s)
				if err != nil {
					return nil, fmt.Errorf("%w: Data.%s[%d]: %v", ErrMalformed, binding, i, err)
				}
				ev.Body = body
			} else {
				ev.Body = []byte(s)
			}
		} else {
			ev.Body = el
		}
	}
	if err := b.decodeMetadata(req); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *EventHubBatch) decodeMetadata(req *Request) error {
	n := len(b.Events)
	for _, key := range []string{"TriggerPartitionContext", "PartitionContext"} {
		if raw, ok := req.Metadata[key]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &b.Partition); err != nil {
				return fmt.Errorf("%w: Metadata.%s: %v", ErrMalformed, key, err)
			}
			break
		}
	}
	var seqs []int64
	if ok, err := req.MetadataArray("SequenceNumberArray", &seqs); err != nil {
		return err
	} else if ok && len(seqs) != n {
		return fmt.Errorf("%w: SequenceNumberArray has %d entries for %d events", ErrMalformed, len(seqs), n)
	}
	var times []string
	if ok, err := req.MetadataArray("EnqueuedTimeUtcArray", &times); err != nil {
		return err
	} else if ok && len(times) != n {
		return fmt.Errorf("%w: EnqueuedTimeUtcArray has %d entries for %d events", ErrMalformed, len(times), n)
	}
	var offsets []json.RawMessage
	if ok, err := req.MetadataArray("OffsetStringArray", &offsets); err != nil {
		return err
	} else if !ok {
		if _, err := req.MetadataArray("OffsetArray", &offsets); err != nil {
			return err
		}
	}
	var keys []*string
	if _, err := req.MetadataArray("PartitionKeyArray", &keys); err != nil {
		return err
	}
	var props []json.RawMessage
	if _, err := req.MetadataArray("PropertiesArray", &props); err != nil {
		return err
	}
	for i := range b.Events {
		ev := &b.Events[i]
		if i < len(seqs) {
			ev.SequenceNumber = seqs[i]
		} else {
			ev.SequenceNumber = -1
		}
		if i < len(times) {
			t, err := ParseHostTime(times[i])
			if err != nil {
				return fmt.Errorf("EnqueuedTimeUtcArray[%d]: %w", i, err)
			}
			ev.EnqueuedTime = t
		}
		if i < len(offsets) {
			ev.Offset = scalarText(offsets[i])
		}
		if i < len(keys) && keys[i] != nil {
			ev.PartitionKey = *keys[i]
		}
		if i < len(props) {
			ev.properties = props[i]
		}
	}
	return nil
}

// scalarText renders a JSON string or number as its text (offsets are strings in newer extensions
// and numbers in older ones).
func scalarText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// PartitionIDInt returns the numeric partition id, or -1.
func (p PartitionContext) PartitionIDInt() int {
	n, err := strconv.Atoi(p.PartitionID)
	if err != nil {
		return -1
	}
	return n
}
