package clickstream_test

import (
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/clickstream"
)

func TestDecodeClampsClockSkew(t *testing.T) {
	enq := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	body := func(ts string) []byte {
		return []byte(`{"specversion":"1.0","id":"e","source":"/s","type":"com.contoso.clickstream.product.viewed","time":"` + ts + `","data":{"userId":"u","productId":"p"}}`)
	}
	raws := []clickstream.Raw{
		{Body: body("2026-11-25T10:04:00Z"), EnqueuedTime: enq, SequenceNumber: 1}, // within the allowed skew
		{Body: body("2027-01-01T00:00:00Z"), EnqueuedTime: enq, SequenceNumber: 2}, // a wrong clock
		{Body: body("2026-11-25T09:00:00Z"), EnqueuedTime: enq, SequenceNumber: 3}, // late is fine
	}
	d := clickstream.Decode(clickstream.Source{Function: "F"}, raws, enq)
	want := []time.Time{enq.Add(4 * time.Minute), enq, enq.Add(-time.Hour)}
	for i, c := range d.Clicks {
		if !c.Time.Equal(want[i]) {
			t.Errorf("click %d time %v, want %v", i, c.Time, want[i])
		}
	}
}
