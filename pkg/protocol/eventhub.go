package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/contoso/eventpipeline/pkg/jsonscan"
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
	// Application properties are mostly strings (the CloudEvents binary-mode attributes): read those
	// with the strict scanner and leave only other values to encoding/json.
	m := make(map[string]any, 8)
	sc := jsonscan.New(e.properties)
	err := sc.Object(func(key []byte, esc bool) error {
		k := string(key)
		if esc {
			var err error
			if k, err = jsonscan.Unescape(key); err != nil {
				return err
			}
		}
		if sc.Peek() == '"' {
			v, err := sc.Text()
			m[k] = v
			return err
		}
		sc.WS()
		start := sc.I
		if err := sc.Value(); err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(e.properties[start:sc.I], &v); err != nil {
			return err
		}
		m[k] = v
		return nil
	})
	if err == nil {
		err = sc.End()
	}
	if err != nil {
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
// Bodies share one buffer; PropertiesArray and SystemPropertiesArray are not decoded here.
func DecodeEventHubBatch(req *Request, binding string, binary bool) (*EventHubBatch, error) {
	raw, err := req.Binding(binding)
	if err != nil {
		return nil, err
	}
	scratch := scratchPool.Get().(*[]byte)
	defer scratchPool.Put(scratch)
	// The array text is only needed while the bodies are copied out of it (into arena).
	arr, inScratch, err := stringHoldingJSONInto((*scratch)[:0], raw)
	if err != nil {
		return nil, fmt.Errorf("%w: Data.%s: want a string holding a JSON array: %v", ErrMalformed, binding, err)
	}
	if inScratch {
		*scratch = arr[:0] // keep the grown buffer for the next batch
	}
	b := &EventHubBatch{Events: make([]EventHubEvent, 0, 64)}
	arena := make([]byte, 0, len(arr)) // unescaped bodies are never longer than their escaped text
	_, err = eachElement(arr, 0, func(i int, el []byte) error {
		ev := EventHubEvent{Index: i}
		if el[0] == '"' {
			start := len(arena)
			var err error
			if arena, err = appendUnquoted(arena, el); err != nil {
				return err
			}
			ev.Body = arena[start:len(arena):len(arena)]
			if binary {
				body, err := decodeBase64(string(ev.Body))
				if err != nil {
					return err
				}
				ev.Body = body
			}
		} else {
			// A parsed body (no dataType): copy it out of the scratch buffer too.
			start := len(arena)
			arena = append(arena, el...)
			ev.Body = arena[start:len(arena):len(arena)]
		}
		b.Events = append(b.Events, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: Data.%s: %v", ErrMalformed, binding, err)
	}
	if err := b.decodeMetadata(req); err != nil {
		return nil, err
	}
	return b, nil
}

// stringHoldingJSON returns the JSON text held by a metadata or data value the host sent as a string
// (or the value itself when a host sent the JSON directly).
func stringHoldingJSON(raw []byte) ([]byte, error) {
	out, _, err := stringHoldingJSONInto(make([]byte, 0, len(raw)), raw)
	return out, err
}

// stringHoldingJSONInto is stringHoldingJSON appending to dst; inDst says whether the result is in
// dst (false: it is raw itself).
func stringHoldingJSONInto(dst, raw []byte) ([]byte, bool, error) {
	i := skipWS(raw, 0)
	if i < len(raw) && raw[i] == '"' {
		out, err := appendUnquoted(dst, raw[i:])
		return out, true, err
	}
	return raw, false, nil
}

// scratchPool holds buffers for text that is parsed and dropped within one decode.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// metaArray calls fn for each element of the Metadata array key; it reports how many there were, or
// -1 when the key is absent. Unless keep, the elements are only valid during fn.
func (r *Request) metaArray(key string, keep bool, fn func(i int, v []byte) error) (int, error) {
	raw, ok := r.Metadata[key]
	if !ok || string(raw) == "null" {
		return -1, nil
	}
	var arr []byte
	var err error
	if keep {
		arr, err = stringHoldingJSON(raw)
	} else {
		scratch := scratchPool.Get().(*[]byte)
		defer scratchPool.Put(scratch)
		var inScratch bool
		arr, inScratch, err = stringHoldingJSONInto((*scratch)[:0], raw)
		if inScratch {
			*scratch = arr[:0]
		}
	}
	if err != nil {
		return 0, fmt.Errorf("%w: Metadata.%s: %v", ErrMalformed, key, err)
	}
	n := 0
	if _, err := eachElement(arr, 0, func(i int, v []byte) error { n++; return fn(i, v) }); err != nil {
		return 0, fmt.Errorf("%w: Metadata.%s: %v", ErrMalformed, key, err)
	}
	return n, nil
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
	for i := range b.Events {
		b.Events[i].SequenceNumber = -1
	}
	check := func(key string, got int, err error) error {
		if err != nil {
			return err
		}
		if got >= 0 && got != n {
			return fmt.Errorf("%w: %s has %d entries for %d events", ErrMalformed, key, got, n)
		}
		return nil
	}
	got, err := req.metaArray("SequenceNumberArray", false, func(i int, v []byte) error {
		if i >= n {
			return nil
		}
		s, err := strconv.ParseInt(string(v), 10, 64)
		b.Events[i].SequenceNumber = s
		return err
	})
	if err := check("SequenceNumberArray", got, err); err != nil {
		return err
	}
	got, err = req.metaArray("EnqueuedTimeUtcArray", false, func(i int, v []byte) error {
		if i >= n {
			return nil
		}
		t, err := parseTimeValue(v)
		b.Events[i].EnqueuedTime = t
		return err
	})
	if err := check("EnqueuedTimeUtcArray", got, err); err != nil {
		return err
	}
	offsets := func(i int, v []byte) error {
		if i < n {
			b.Events[i].Offset = scalarText(v)
		}
		return nil
	}
	if got, err = req.metaArray("OffsetStringArray", false, offsets); err == nil && got < 0 {
		got, err = req.metaArray("OffsetArray", false, offsets)
	}
	if err := check("OffsetArray", got, err); err != nil {
		return err
	}
	got, err = req.metaArray("PartitionKeyArray", false, func(i int, v []byte) error {
		if i < n && v[0] == '"' {
			b.Events[i].PartitionKey = scalarText(v)
		}
		return nil
	})
	if err := check("PartitionKeyArray", got, err); err != nil {
		return err
	}
	got, err = req.metaArray("PropertiesArray", true, func(i int, v []byte) error {
		if i < n {
			b.Events[i].properties = v
		}
		return nil
	})
	return check("PropertiesArray", got, err)
}

// parseTimeValue parses a JSON string holding a host date; the common zone-less
// "2006-01-02T15:04:05.fff" form is parsed without the time package's layout machinery.
func parseTimeValue(v []byte) (time.Time, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return time.Time{}, fmt.Errorf("%w: time %s", ErrMalformed, v)
	}
	s := v[1 : len(v)-1]
	if t, ok := fastTime(s); ok {
		return t, nil
	}
	return ParseHostTime(string(s))
}

func fastTime(s []byte) (time.Time, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(s[0:4])
	mo, ok2 := num(s[5:7])
	d, ok3 := num(s[8:10])
	h, ok4 := num(s[11:13])
	mi, ok5 := num(s[14:16])
	se, ok6 := num(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59 {
		return time.Time{}, false
	}
	ns := 0
	rest := s[19:]
	if len(rest) > 0 && rest[0] == '.' {
		digits := rest[1:]
		k := 0
		for k < len(digits) && digits[k] >= '0' && digits[k] <= '9' {
			k++
		}
		if k == 0 || k > 9 {
			return time.Time{}, false
		}
		f, _ := num(digits[:k])
		for range 9 - k {
			f *= 10
		}
		ns = f
		rest = digits[k:]
	}
	if len(rest) == 1 && rest[0] == 'Z' {
		rest = nil
	}
	if len(rest) != 0 {
		return time.Time{}, false // has an offset: the slow path handles it
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, ns, time.UTC)
	if t.Day() != d { // e.g. February 30th
		return time.Time{}, false
	}
	return t, true
}

// scalarText renders a JSON string or number as its text (offsets are strings in newer extensions
// and numbers in older ones).
func scalarText(raw json.RawMessage) string {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : n-1])
	}
	if len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return string(raw)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
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
