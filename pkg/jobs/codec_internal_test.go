package jobs

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func samplePartial() *Partial {
	many := make([]uint64, 3000)
	for i := range many {
		many[i] = Hash(string(rune(i)))
	}
	return &Partial{Version: partialVersion, File: "ns/clickstream/1/2026/11/24/08/05/00.avro", Partition: "1",
		Window: time.Date(2026, 11, 24, 8, 5, 0, 0, time.UTC),
		Counts: FileCounts{Events: 10, Clicks: 8, Views: 6, AddedToCart: 1, Purchased: 1, Skipped: 1, Poison: 1,
			PoisonReasons: map[string]int64{"body is not JSON": 1}, Announced: -1},
		Products: []ProductStats{
			{ID: "p-1", Category: "tools", Views: 4, Viewers: SketchOf(ProductPrecision, []uint64{3, 1, 2}), Sessions: SketchOf(ProductPrecision, []uint64{9})},
			{ID: "p-2", Views: 2, AddedToCart: 1, Purchased: 1, Viewers: SketchOf(ProductPrecision, append([]uint64(nil), many...)), Sessions: NewSketch(ProductPrecision)},
		},
		Sessions:    []SessionFragment{{Key: 5, Products: []int32{0, 1}}, {Key: 9, Products: []int32{1}}},
		Viewers:     SketchOf(TotalPrecision, []uint64{1, 2, 3}),
		SessionKeys: SketchOf(TotalPrecision, append([]uint64(nil), many...)),
	}
}

func TestPartialCodecRoundTrip(t *testing.T) {
	p := samplePartial()
	b, err := p.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePartial(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("(-encoded +decoded):\n%s", diff)
	}
	other := append([]byte(nil), b...)
	other[3] = partialVersion + 1
	if _, err := decodePartial(other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another version: err = %v, want ErrNotFound (recompute)", err)
	}
}

// A damaged partial is an error, never a panic; every truncation is caught.
func TestPartialCodecDamage(t *testing.T) {
	b, err := samplePartial().encode()
	if err != nil {
		t.Fatal(err)
	}
	for cut := 0; cut < len(b); cut += 7 {
		if _, err := decodePartial(b[:cut]); err == nil {
			t.Fatalf("truncated at %d of %d: no error", cut, len(b))
		}
	}
}

func FuzzDecodePartial(f *testing.F) {
	small := samplePartial()
	small.Products[1].Viewers = SketchOf(ProductPrecision, []uint64{7, 8})
	small.SessionKeys = SketchOf(TotalPrecision, []uint64{4})
	b, _ := small.encode()
	f.Add(b)
	f.Add([]byte("CRP\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePartial(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes.
		again, err := p.encode()
		if err != nil || string(again) != string(b) {
			t.Fatalf("decoded partial does not re-encode to its bytes (%v)", err)
		}
	})
}
