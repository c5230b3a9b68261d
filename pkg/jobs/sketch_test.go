package jobs_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/jobs"
)

var docstoreOpts = docstore.PutOptions{}

func hashes(from, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = jobs.Hash(fmt.Sprintf("viewer-%d", from+i))
	}
	return out
}

// Below ExactLimit the count is exact; above it the HyperLogLog estimate stays within four standard
// errors (1.04/sqrt(2^p)) across the range, including the transition where plain HyperLogLog is
// biased.
func TestSketchCounts(t *testing.T) {
	for _, p := range []uint8{jobs.ProductPrecision, jobs.TotalPrecision} {
		se := 1.04 / math.Sqrt(float64(int(1)<<p))
		for _, n := range []int{0, 1, 7, jobs.ExactLimit(p), jobs.ExactLimit(p) + 1, 3000, 10000, 40000, 150000, 1000000} {
			s := jobs.SketchOf(p, hashes(0, n))
			got := s.Count()
			if n <= jobs.ExactLimit(p) {
				if got != int64(n) || !s.Exactly() {
					t.Errorf("p=%d n=%d: %d (exact %v), want exactly %d", p, n, got, s.Exactly(), n)
				}
				continue
			}
			if rel := math.Abs(float64(got)-float64(n)) / float64(n); rel > 4*se {
				t.Errorf("p=%d n=%d: estimate %d is %.2f%% off (4 standard errors: %.2f%%)", p, n, got, 100*rel, 400*se)
			}
		}
	}
}

// Merging is a union: any order, any grouping, and repeats give the same sketch.
func TestSketchMergeIsAUnion(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var parts []jobs.Sketch
	for range 30 {
		from := r.IntN(5000)
		parts = append(parts, jobs.SketchOf(jobs.ProductPrecision, hashes(from, r.IntN(300))))
	}
	merge := func(order []int) jobs.Sketch {
		s := jobs.NewSketch(jobs.ProductPrecision)
		for _, i := range order {
			s.Merge(parts[i])
		}
		return s
	}
	order := r.Perm(len(parts))
	a := merge(order)
	b := merge(r.Perm(len(parts)))
	c := merge(append(order, order[:10]...))
	if a.Count() != b.Count() || a.Count() != c.Count() || fmt.Sprint(a) != fmt.Sprint(b) || fmt.Sprint(a) != fmt.Sprint(c) {
		t.Fatalf("merges differ: %d %d %d", a.Count(), b.Count(), c.Count())
	}
	// And equals the sketch of the union built at once.
	seen := map[uint64]bool{}
	var all []uint64
	for _, p := range parts {
		for _, h := range p.Exact {
			if !seen[h] {
				seen[h] = true
				all = append(all, h)
			}
		}
	}
	if u := jobs.SketchOf(jobs.ProductPrecision, all); fmt.Sprint(u) != fmt.Sprint(a) {
		t.Fatalf("merged sketch (%d) differs from the sketch of the union (%d)", a.Count(), u.Count())
	}
}

// Hash is part of the stored partials' format: it must never change (values computed independently:
// FNV-1a 64 then MurmurHash3 fmix64, in Python).
func TestHashIsStable(t *testing.T) {
	for s, want := range map[string]uint64{"": 0xefd01f60ba992926, "u-000042": 0x251e98a5a188e605} {
		if got := jobs.Hash(s); got != want {
			t.Errorf("Hash(%q) = %#x, want %#x", s, got, want)
		}
	}
}
