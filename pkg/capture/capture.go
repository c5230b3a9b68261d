// Package capture owns Event Hubs Capture files: the Avro record Capture writes (EventData), the blob
// layout {Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}.avro, a
// strict streaming reader and a writer of the exact format, where the files are found (Source: a Blob
// container in Azure, LOCAL_DATA_DIR/capture locally) and the Microsoft.EventHub.CaptureFileCreated
// notification that announces a new file.
//
// Reading is streaming: a file is read block by block from an io.Reader (the blob download stream or
// an os.File), so no file, and no day of files, has to fit in memory. A file that is not a complete,
// well-formed Capture file is ErrCorrupt (poison: re-reading it cannot help); any other error is the
// source's (transient: read it again later).
package capture

import (
	"errors"
	"fmt"
	"time"

	"github.com/contoso/eventpipeline/pkg/clickstream"
)

// Schema is the Avro schema of Capture's records, byte for byte as Capture writes it in a file's
// avro.schema metadata (learn.microsoft.com/azure/event-hubs/event-hubs-capture-overview).
const Schema = `{"type":"record","name":"EventData","namespace":"Microsoft.ServiceBus.Messaging","fields":[` +
	`{"name":"SequenceNumber","type":"long"},` +
	`{"name":"Offset","type":"string"},` +
	`{"name":"EnqueuedTimeUtc","type":"string"},` +
	`{"name":"SystemProperties","type":{"type":"map","values":["long","double","string","bytes"]}},` +
	`{"name":"Properties","type":{"type":"map","values":["long","double","string","bytes"]}},` +
	`{"name":"Body","type":["null","bytes"]}]}`

// EnqueuedTimeLayout is how Capture writes EnqueuedTimeUtc: .NET's invariant-culture DateTime text,
// e.g. "6/12/2020 6:32:34 PM" (UTC, whole seconds).
const EnqueuedTimeLayout = "1/2/2006 3:04:05 PM"

// Errors of this package.
var (
	// ErrCorrupt: the file is not a complete, well-formed Capture file (bad magic or schema,
	// truncated, a bad block or record). Poison: reading it again gives the same answer.
	ErrCorrupt = errors.New("capture file corrupt")
	// ErrNotFound: no such file in the source.
	ErrNotFound = errors.New("capture file not found")
	// ErrInvalid: a name or notification that does not describe a Capture file.
	ErrInvalid = errors.New("invalid capture reference")
)

// Record is one captured event.
type Record struct {
	SequenceNumber int64
	Offset         string
	// EnqueuedTimeUtc is the text Capture wrote; EnqueuedTime its parsed value (zero when it could
	// not be parsed).
	EnqueuedTimeUtc string
	EnqueuedTime    time.Time
	// Properties are the event's application properties (binary-mode CloudEvents attributes live
	// here); values are int64, float64, string or []byte. SystemProperties are not decoded.
	Properties map[string]any
	Body       []byte
}

// Raw is the record as the clickstream decoder takes it, so that clicks from Capture are decoded by
// exactly the code the streaming functions use (clickstream.Decode / events.DecodeClick). The Raw
// refers to the record's memory, which stays valid after the reader moves on.
func (r *Record) Raw(partition string) clickstream.Raw {
	raw := clickstream.Raw{Body: r.Body, Partition: partition, SequenceNumber: r.SequenceNumber,
		Offset: r.Offset, EnqueuedTime: r.EnqueuedTime}
	if len(r.Properties) > 0 {
		props := r.Properties
		raw.Properties = func() (map[string]any, error) { return props, nil }
	}
	return raw
}

// ParseEnqueuedTime reads Capture's EnqueuedTimeUtc text. RFC 3339 is accepted too (other writers).
func ParseEnqueuedTime(s string) (time.Time, error) {
	if t, err := time.Parse(EnqueuedTimeLayout, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("capture: EnqueuedTimeUtc %q is neither %q nor RFC 3339", s, EnqueuedTimeLayout)
}
