package publish_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/contoso/eventpipeline/pkg/publish"
)

// BenchmarkJSONLSend measures the embedded twin: encode and append batches of 100 product-change-like
// events (about 400 bytes each). ns/event is the per-event cost.
//
//	go test -run '^$' -bench JSONLSend -benchmem ./pkg/publish/
func BenchmarkJSONLSend(b *testing.B) {
	j, err := publish.NewJSONL(b.TempDir(), "ProductEventsTopic", publish.JSONLOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	events := newEvents(b, "bench-", 100)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := j.Send(ctx, events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}
