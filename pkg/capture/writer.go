package capture

import (
	"fmt"
	"io"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"
)

// Codec is the block compression of a written file. Capture writes deflate; null is accepted by
// readers too and is what some tools produce.
type Codec string

// Codecs the writer and the reader support.
const (
	Deflate Codec = "deflate"
	Null    Codec = "null"
)

// WriterOptions shape a written file.
type WriterOptions struct {
	Codec Codec // Deflate when empty
	// BlockRecords is the number of records per Avro block (default 1000).
	BlockRecords int
}

// Writer writes a file in Capture's exact format (header with Capture's schema text, EventData
// records, deflate blocks) with hamba's OCF encoder. Tests, the local run and the benchmarks use it
// to make Capture files; production code only reads them.
type Writer struct {
	enc *ocf.Encoder
	rec avroRecord
}

// avroRecord is EventData as hamba encodes and decodes it.
type avroRecord struct {
	SequenceNumber   int64          `avro:"SequenceNumber"`
	Offset           string         `avro:"Offset"`
	EnqueuedTimeUtc  string         `avro:"EnqueuedTimeUtc"`
	SystemProperties map[string]any `avro:"SystemProperties"`
	Properties       map[string]any `avro:"Properties"`
	Body             []byte         `avro:"Body"` // nil: the null branch
}

var schema = avro.MustParse(Schema)

// NewWriter starts a file on w.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	codec := opts.Codec
	if codec == "" {
		codec = Deflate
	}
	if codec != Deflate && codec != Null {
		return nil, fmt.Errorf("capture.NewWriter: codec %q (want deflate or null)", codec)
	}
	n := opts.BlockRecords
	if n <= 0 {
		n = 1000
	}
	enc, err := ocf.NewEncoderWithSchema(schema, w, ocf.WithCodec(ocf.CodecName(codec)), ocf.WithBlockLength(n),
		// Capture's own schema text, not hamba's canonical form of it.
		ocf.WithSchemaMarshaler(func(avro.Schema) ([]byte, error) { return []byte(Schema), nil }))
	if err != nil {
		return nil, fmt.Errorf("capture.NewWriter: %w", err)
	}
	return &Writer{enc: enc}, nil
}

// Event is one event to write. A zero EnqueuedTime is written as the zero .NET date.
type Event struct {
	SequenceNumber int64
	Offset         string
	EnqueuedTime   time.Time
	// SystemProperties are what Capture records of the broker's annotations (often empty).
	SystemProperties map[string]any
	Properties       map[string]any // int64, float64, string or []byte values
	Body             []byte
}

// Write appends one event.
func (w *Writer) Write(e Event) error {
	r := &w.rec
	r.SequenceNumber, r.Offset, r.Body = e.SequenceNumber, e.Offset, e.Body
	if e.EnqueuedTime.IsZero() {
		r.EnqueuedTimeUtc = "1/1/0001 12:00:00 AM"
	} else {
		r.EnqueuedTimeUtc = e.EnqueuedTime.UTC().Format(EnqueuedTimeLayout)
	}
	r.SystemProperties, r.Properties = e.SystemProperties, e.Properties
	if r.SystemProperties == nil {
		r.SystemProperties = map[string]any{}
	}
	if r.Properties == nil {
		r.Properties = map[string]any{}
	}
	if err := w.enc.Encode(r); err != nil {
		return fmt.Errorf("capture.Writer: record %d: %w", e.SequenceNumber, err)
	}
	return nil
}

// Close writes the last block. It does not close the underlying writer.
func (w *Writer) Close() error {
	if err := w.enc.Close(); err != nil {
		return fmt.Errorf("capture.Writer: close: %w", err)
	}
	return nil
}
