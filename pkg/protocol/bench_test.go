package protocol_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

func benchEnvelope() []byte {
	evs := make([]hostsim.Event, 256)
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i := range evs {
		evs[i] = hostsim.Event{Body: fmt.Appendf(nil, `{"specversion":"1.0","id":"c-%d","source":"/contoso/web","type":"com.contoso.clickstream.product.viewed","time":%q,"datacontenttype":"application/json","data":{"userId":"u-%06d","sessionId":"s-%08x","productId":"p-%05d","category":"tools","page":"/p/p-%05d"}}`,
			i, t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i*7, i*13, i%500, i%500), SequenceNumber: int64(i), Offset: int64(i) * 512, EnqueuedTime: t0}
	}
	return hostsim.EventHubBatch("RecentlyViewed", "events", protocol.PartitionContext{PartitionID: "0"}, evs, &protocol.RetryContext{MaxRetryCount: 5})
}

// BenchmarkDecodeEventHubBatch: envelope scan + batch decode of 256 clicks as the host sends them.
func BenchmarkDecodeEventHubBatch(b *testing.B) {
	env := benchEnvelope()
	b.SetBytes(int64(len(env)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := protocol.DecodeRequest(env)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := protocol.DecodeEventHubBatch(req, "events", false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "events/s")
}
