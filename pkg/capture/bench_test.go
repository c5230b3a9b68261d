package capture_test

import (
	"bytes"
	"testing"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/clickgen"
)

func clickgenFile(b *testing.B, n int) []byte {
	g := clickgen.New(clickgen.Default())
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		e := g.Next()
		if err := w.Write(capture.Event{SequenceNumber: int64(i), Offset: "0", EnqueuedTime: e.Time, Properties: e.Properties, Body: e.Body}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkRead is the Avro part of the rollup: records per second from a deflate Capture file of
// clickgen events.
func BenchmarkRead(b *testing.B) {
	const n = 20000
	file := clickgenFile(b, n)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, err := capture.ReadAll(bytes.NewReader(file), capture.ReaderOptions{Size: int64(len(file))}, func(*capture.Record) error { return nil })
		if err != nil || got != n {
			b.Fatal(got, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
