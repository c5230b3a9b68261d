package capture_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2/ocf"

	"github.com/contoso/eventpipeline/pkg/capture"
)

var t0 = time.Date(2026, 11, 24, 8, 5, 0, 0, time.UTC)

func sampleEvents(n int) []capture.Event {
	evs := make([]capture.Event, n)
	for i := range evs {
		e := capture.Event{SequenceNumber: int64(100 + i), Offset: fmt.Sprint(4096 * i),
			EnqueuedTime: t0.Add(time.Duration(i) * 300 * time.Millisecond),
			Body:         fmt.Appendf(nil, `{"specversion":"1.0","id":"e%d","n":%d}`, i, i)}
		switch i % 4 {
		case 1:
			e.Properties = map[string]any{"cloudEvents:id": fmt.Sprint("b", i), "n": int64(i), "f": 1.5, "raw": []byte{1, 2}}
		case 2:
			e.SystemProperties = map[string]any{"x-opt-sequence-number": int64(100 + i), "x-opt-enqueued-time": "x"}
		case 3:
			e.Body = nil
		}
		evs[i] = e
	}
	return evs
}

func write(t testing.TB, evs []capture.Event, opts capture.WriterOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(b []byte, opts capture.ReaderOptions) ([]capture.Record, error) {
	var out []capture.Record
	_, err := capture.ReadAll(bytes.NewReader(b), opts, func(r *capture.Record) error {
		out = append(out, *r)
		return nil
	})
	return out, err
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  capture.WriterOptions
		n     int
		codec capture.Codec
	}{
		{"deflate", capture.WriterOptions{}, 2500, capture.Deflate},
		{"null", capture.WriterOptions{Codec: capture.Null, BlockRecords: 7}, 50, capture.Null},
		{"empty", capture.WriterOptions{}, 0, capture.Deflate},
		{"one record per block", capture.WriterOptions{BlockRecords: 1}, 5, capture.Deflate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := sampleEvents(tc.n)
			b := write(t, evs, tc.opts)
			rd, err := capture.NewReader(bytes.NewReader(b), capture.ReaderOptions{Size: int64(len(b))})
			if err != nil {
				t.Fatal(err)
			}
			if rd.Codec() != tc.codec {
				t.Errorf("codec %q, want %q", rd.Codec(), tc.codec)
			}
			var got []capture.Record
			for rd.Next() {
				got = append(got, *rd.Record())
			}
			if err := rd.Err(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(evs) || rd.Records() != int64(len(evs)) {
				t.Fatalf("read %d records (Records %d), wrote %d", len(got), rd.Records(), len(evs))
			}
			for i, e := range evs {
				want := capture.Record{SequenceNumber: e.SequenceNumber, Offset: e.Offset,
					EnqueuedTimeUtc: e.EnqueuedTime.Format("1/2/2006 3:04:05 PM"), EnqueuedTime: e.EnqueuedTime.Truncate(time.Second),
					Properties: e.Properties, Body: e.Body}
				if diff := cmp.Diff(want, got[i]); diff != "" {
					t.Fatalf("record %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// The header carries Capture's schema text and codec, as Capture writes them.
func TestWriterHeaderIsCaptures(t *testing.T) {
	b := write(t, sampleEvents(3), capture.WriterOptions{})
	dec, err := ocf.NewDecoder(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	meta := dec.Metadata()
	if got := string(meta["avro.schema"]); got != capture.Schema {
		t.Errorf("avro.schema = %s", got)
	}
	if got := string(meta["avro.codec"]); got != "deflate" {
		t.Errorf("avro.codec = %q", got)
	}
	// An independent decoder (hamba's own) reads what the writer wrote.
	n := 0
	for dec.HasNext() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["SystemProperties"]; !ok {
			t.Fatalf("record without SystemProperties: %v", m)
		}
		if m["EnqueuedTimeUtc"] != "11/24/2026 8:05:00 AM" && n == 0 {
			t.Errorf("EnqueuedTimeUtc %q, want Capture's .NET form", m["EnqueuedTimeUtc"])
		}
		n++
	}
	if dec.Error() != nil || n != 3 {
		t.Fatalf("hamba read %d records, err %v", n, dec.Error())
	}
}

// Files written by other tools with a compatible schema (an extra "null" branch in the property
// values, Body as plain bytes, fields in another order) are read.
func TestReadsCompatibleSchemas(t *testing.T) {
	const other = `{"type":"record","name":"EventData","namespace":"Microsoft.ServiceBus.Messaging","fields":[` +
		`{"name":"Body","type":"bytes"},{"name":"Properties","type":{"type":"map","values":["long","double","string","bytes","null"]}},` +
		`{"name":"SequenceNumber","type":"long"},{"name":"Offset","type":"string"},{"name":"EnqueuedTimeUtc","type":"string"},` +
		`{"name":"SystemProperties","type":{"type":"map","values":["long","double","string","bytes","null"]}}]}`
	var buf bytes.Buffer
	enc, err := ocf.NewEncoder(other, &buf, ocf.WithCodec(ocf.Deflate))
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Body             []byte         `avro:"Body"`
		Properties       map[string]any `avro:"Properties"`
		SequenceNumber   int64          `avro:"SequenceNumber"`
		Offset           string         `avro:"Offset"`
		EnqueuedTimeUtc  string         `avro:"EnqueuedTimeUtc"`
		SystemProperties map[string]any `avro:"SystemProperties"`
	}
	if err := enc.Encode(rec{Body: []byte("x"), Properties: map[string]any{"a": nil, "b": "c"}, SequenceNumber: 7, Offset: "8",
		EnqueuedTimeUtc: "2026-11-24T08:05:00.5Z", SystemProperties: map[string]any{"k": nil}}); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(buf.Bytes(), capture.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []capture.Record{{SequenceNumber: 7, Offset: "8", EnqueuedTimeUtc: "2026-11-24T08:05:00.5Z",
		EnqueuedTime: t0.Add(500 * time.Millisecond), Properties: map[string]any{"a": nil, "b": "c"}, Body: []byte("x")}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestRejectsOtherFiles(t *testing.T) {
	otherAvro := func(schema string, v any) []byte {
		var buf bytes.Buffer
		enc, err := ocf.NewEncoder(schema, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	snappy := func() []byte {
		var buf bytes.Buffer
		enc, err := ocf.NewEncoder(capture.Schema, &buf, ocf.WithCodec(ocf.Snappy))
		if err != nil {
			t.Fatal(err)
		}
		_ = enc.Close()
		return buf.Bytes()
	}
	for name, b := range map[string][]byte{
		"empty":            nil,
		"not avro":         []byte("GET / HTTP/1.1\r\n\r\n"),
		"json":             []byte(`{"SequenceNumber":1}`),
		"other record":     otherAvro(`{"type":"record","name":"X","fields":[{"name":"a","type":"long"}]}`, map[string]any{"a": int64(1)}),
		"wrong field type": otherAvro(strings.Replace(capture.Schema, `"Offset","type":"string"`, `"Offset","type":"long"`, 1), map[string]any{"SequenceNumber": int64(1), "Offset": int64(2), "EnqueuedTimeUtc": "x", "SystemProperties": map[string]any{}, "Properties": map[string]any{}, "Body": nil}),
		"snappy":           snappy(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := readAll(b, capture.ReaderOptions{Size: int64(len(b))})
			if !errors.Is(err, capture.ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

// Cutting a file anywhere inside the header or a block is ErrCorrupt (never a panic, never a
// shorter clean read), whatever the reader knows of the size. A cut exactly between blocks cannot be
// told from a shorter file by the Avro format alone; CaptureFileCreated's eventCount catches it.
func TestTruncatedFiles(t *testing.T) {
	evs := sampleEvents(40)
	for _, codec := range []capture.Codec{capture.Deflate, capture.Null} {
		b := write(t, evs, capture.WriterOptions{Codec: codec, BlockRecords: 10})
		boundaries := blockEnds(t, b)
		for cut := 0; cut < len(b); cut++ {
			recs, err := readAll(b[:cut], capture.ReaderOptions{Size: int64(cut)})
			if n, ok := boundaries[cut]; ok {
				if err != nil || len(recs) != n {
					t.Fatalf("%s: cut at block boundary %d: %d records, err %v", codec, cut, len(recs), err)
				}
				continue
			}
			if !errors.Is(err, capture.ErrCorrupt) {
				t.Fatalf("%s: cut at %d of %d: %d records, err %v; want ErrCorrupt", codec, cut, len(b), len(recs), err)
			}
		}
	}
}

// blockEnds maps each offset at which a block ends to the records before it (the header end is 0).
func blockEnds(t *testing.T, b []byte) map[int]int {
	t.Helper()
	pos := headerLen(t, b)
	ends := map[int]int{pos: 0}
	recs := 0
	for pos < len(b) {
		count, n := binary.Varint(b[pos:])
		pos += n
		size, n := binary.Varint(b[pos:])
		pos += n + int(size) + 16
		recs += int(count)
		ends[pos] = recs
	}
	return ends
}

func TestSourceFailureIsNotCorruption(t *testing.T) {
	b := write(t, sampleEvents(100), capture.WriterOptions{BlockRecords: 10})
	boom := errors.New("connection reset")
	t.Run("error mid-file", func(t *testing.T) {
		r := io.MultiReader(bytes.NewReader(b[:len(b)/2]), iotest.ErrReader(boom))
		_, err := capture.ReadAll(r, capture.ReaderOptions{Size: int64(len(b))}, func(*capture.Record) error { return nil })
		if !errors.Is(err, boom) || errors.Is(err, capture.ErrCorrupt) {
			t.Fatalf("err = %v, want the source's error", err)
		}
	})
	t.Run("stream shorter than announced", func(t *testing.T) {
		_, err := capture.ReadAll(bytes.NewReader(b[:len(b)/2]), capture.ReaderOptions{Size: int64(len(b))}, func(*capture.Record) error { return nil })
		if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, capture.ErrCorrupt) {
			t.Fatalf("err = %v, want a transient short read", err)
		}
	})
	t.Run("one byte at a time", func(t *testing.T) {
		n, err := capture.ReadAll(iotest.OneByteReader(bytes.NewReader(b)), capture.ReaderOptions{Size: int64(len(b))}, func(*capture.Record) error { return nil })
		if err != nil || n != 100 {
			t.Fatalf("%d records, err %v", n, err)
		}
	})
}

// A corrupt length must not allocate what it claims.
func TestHugeBlockLengthIsCorrupt(t *testing.T) {
	b := write(t, sampleEvents(1), capture.WriterOptions{Codec: capture.Null})
	hdr := headerLen(t, b)
	var bad []byte
	bad = append(bad, b[:hdr]...)
	bad = binary.AppendVarint(bad, 1)      // one record
	bad = binary.AppendVarint(bad, 1<<50)  // in a petabyte
	bad = append(bad, make([]byte, 64)...) // and a little data
	_, err := readAll(bad, capture.ReaderOptions{})
	if !errors.Is(err, capture.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	bad = append(bad[:hdr], binary.AppendVarint(binary.AppendVarint(nil, 1<<40), 8)...)
	bad = append(bad, make([]byte, 8+16)...)
	if _, err := readAll(bad, capture.ReaderOptions{}); !errors.Is(err, capture.ErrCorrupt) {
		t.Fatalf("huge count: err = %v, want ErrCorrupt", err)
	}
}

func headerLen(t *testing.T, b []byte) int {
	t.Helper()
	for i := 0; i+16 <= len(b); i++ {
		// The header ends with the 16-byte sync marker, which also ends every block.
		if bytes.Equal(b[i:i+16], b[len(b)-16:]) {
			return i + 16
		}
	}
	t.Fatal("no sync marker")
	return 0
}

// Flipping any single byte never panics; the reader either reads records or says ErrCorrupt (Avro
// carries no checksum, so a flipped byte inside a body can go unnoticed).
func TestFlippedBytes(t *testing.T) {
	b := write(t, sampleEvents(30), capture.WriterOptions{BlockRecords: 8})
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0xA5
		_, err := readAll(bad, capture.ReaderOptions{Size: int64(len(bad))})
		if err != nil && !errors.Is(err, capture.ErrCorrupt) {
			t.Fatalf("flip at %d: %v is neither nil nor ErrCorrupt", i, err)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add(write(f, sampleEvents(5), capture.WriterOptions{BlockRecords: 2}))
	f.Add(write(f, sampleEvents(3), capture.WriterOptions{Codec: capture.Null}))
	f.Add([]byte("Obj\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := readAll(b, capture.ReaderOptions{Size: int64(len(b)), MaxBlockBytes: 1 << 20})
		if err != nil && !errors.Is(err, capture.ErrCorrupt) {
			t.Fatalf("%v is neither nil nor ErrCorrupt", err)
		}
	})
}

// NextBatch returns what Next returns, in batches whose bodies stay intact until the next batch.
func TestNextBatchMatchesNext(t *testing.T) {
	b := write(t, sampleEvents(1234), capture.WriterOptions{BlockRecords: 100})
	want, err := readAll(b, capture.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := capture.NewReader(bytes.NewReader(b), capture.ReaderOptions{Size: int64(len(b))})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]capture.Record, 97)
	var got []capture.Record
	for {
		n := rd.NextBatch(batch)
		if n == 0 {
			break
		}
		// Every body of the batch is still what was written when the batch is complete.
		for i := range n {
			if diff := cmp.Diff(want[len(got)+i], batch[i]); diff != "" {
				t.Fatalf("record %d (-Next +NextBatch):\n%s", len(got)+i, diff)
			}
		}
		for i := range n {
			r := batch[i]
			r.Body = bytes.Clone(r.Body)
			got = append(got, r)
		}
	}
	if rd.Err() != nil || len(got) != len(want) {
		t.Fatalf("%d records, err %v; want %d", len(got), rd.Err(), len(want))
	}
}
