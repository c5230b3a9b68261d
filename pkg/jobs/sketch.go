package jobs

import (
	"math"
	"math/bits"
	"slices"
)

// Sketch counts distinct values by their 64-bit hashes, in bounded memory: exactly (a sorted set of
// hashes) while it holds at most ExactLimit(P) of them, then as a HyperLogLog of 2^P one-byte
// registers. Merging is a union, so it is commutative, associative and idempotent: the day's count
// does not depend on the order files are merged in, and merging a file twice would not change it.
//
// The HyperLogLog estimate is Ertl's improved raw estimator ("New cardinality estimation algorithms
// for HyperLogLog sketches", 2017), which needs no empirical bias table and is unbiased from small to
// very large counts; its relative standard error is 1.04/sqrt(2^P): 1.6% for P=12 (products), 0.8%
// for P=14 (day totals). Below ExactLimit the count is exact, up to 64-bit hash collisions.
type Sketch struct {
	P     uint8    `json:"p"`
	Exact []uint64 `json:"e,omitempty"` // sorted, distinct; nil once Regs is used
	Regs  []uint8  `json:"r,omitempty"` // 2^P registers
}

// Precisions used by the rollup.
const (
	ProductPrecision = 12 // per-product viewers and sessions: 4 KiB once dense
	TotalPrecision   = 14 // the day's viewers and sessions: 16 KiB
)

// ExactLimit is how many hashes a sketch of precision p keeps exactly: as many as fit in the
// memory of its registers.
func ExactLimit(p uint8) int { return (1 << p) / 8 }

// NewSketch returns an empty sketch of precision p.
func NewSketch(p uint8) Sketch { return Sketch{P: p} }

// SketchOf builds a sketch from hashes (which it sorts in place).
func SketchOf(p uint8, hashes []uint64) Sketch {
	slices.Sort(hashes)
	hashes = slices.Compact(hashes)
	s := Sketch{P: p}
	if len(hashes) <= ExactLimit(p) {
		s.Exact = slices.Clone(hashes)
		return s
	}
	s.Regs = make([]uint8, 1<<p)
	for _, h := range hashes {
		s.add(h)
	}
	return s
}

func (s *Sketch) add(h uint64) {
	q := 64 - uint(s.P)
	i := h >> q
	// The rank of the remaining q bits: leading zeros + 1, at most q+1.
	r := uint8(bits.LeadingZeros64(h<<uint(s.P)|1<<(uint(s.P)-1)) + 1)
	if r > uint8(q)+1 {
		r = uint8(q) + 1
	}
	if r > s.Regs[i] {
		s.Regs[i] = r
	}
}

// dense turns the exact set into registers.
func (s *Sketch) dense() {
	if s.Regs != nil {
		return
	}
	s.Regs = make([]uint8, 1<<s.P)
	for _, h := range s.Exact {
		s.add(h)
	}
	s.Exact = nil
}

// Merge adds o's values to s. Both must have the same precision.
func (s *Sketch) Merge(o Sketch) {
	if o.P != s.P {
		panic("jobs.Sketch.Merge: precisions differ")
	}
	if s.Regs == nil && o.Regs == nil {
		if len(o.Exact) == 0 {
			return
		}
		u := unionSorted(s.Exact, o.Exact)
		if len(u) <= ExactLimit(s.P) {
			s.Exact = u
			return
		}
		s.Exact = u
		s.dense()
		return
	}
	s.dense()
	if o.Regs != nil {
		for i, r := range o.Regs {
			if r > s.Regs[i] {
				s.Regs[i] = r
			}
		}
		return
	}
	for _, h := range o.Exact {
		s.add(h)
	}
}

// mergeWith is Merge using scratch for the union of exact sets, so that merging many small sets
// into a growing one does not allocate a new slice each time.
func (s *Sketch) mergeWith(o Sketch, scratch *[]uint64) {
	if s.Regs != nil || o.Regs != nil || len(o.Exact) == 0 {
		s.Merge(o)
		return
	}
	if len(s.Exact) == 0 {
		s.Exact = append(s.Exact[:0], o.Exact...)
		return
	}
	u := unionInto((*scratch)[:0], s.Exact, o.Exact)
	*scratch = u
	if len(u) <= ExactLimit(s.P) {
		s.Exact = append(s.Exact[:0], u...)
		return
	}
	s.Exact = u
	s.dense() // drops the reference to scratch
}

// Count is the number of distinct values.
func (s *Sketch) Count() int64 {
	if s.Regs == nil {
		return int64(len(s.Exact))
	}
	return int64(math.Round(ertl(s.Regs, uint(s.P))))
}

// Exactly reports whether Count is exact.
func (s *Sketch) Exactly() bool { return s.Regs == nil }

// ertl is the improved raw estimator of Ertl (2017), section 4.
func ertl(regs []uint8, p uint) float64 {
	q := 64 - p
	m := float64(len(regs))
	c := make([]float64, q+2)
	for _, r := range regs {
		c[r]++
	}
	z := m * tau(1-c[q+1]/m)
	for k := int(q); k >= 1; k-- {
		z = 0.5 * (z + c[k])
	}
	z += m * sigma(c[0]/m)
	return m * m / (2 * math.Ln2 * z)
}

func sigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		next := z + x*y
		y += y
		if next == z {
			return z
		}
		z = next
	}
}

func tau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		next := z - (1-x)*(1-x)*y
		y /= 2
		if next == z {
			return z / 3
		}
		z = next
	}
}

func unionSorted(a, b []uint64) []uint64 { return unionInto(make([]uint64, 0, len(a)+len(b)), a, b) }

// unionInto appends the sorted union of sorted a and b to out.
func unionInto(out, a, b []uint64) []uint64 {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// Hash is the 64-bit hash of an identifier: FNV-1a, then MurmurHash3's finalizer so that the high
// bits HyperLogLog indexes by are well mixed. It is stable across processes and versions: partial
// aggregates written by one run are merged by another.
func Hash(s string) uint64 { return mix(fnv(14695981039346656037, s)) }

// hashKind hashes s after a kind byte, without building the concatenation.
func hashKind(kind byte, s string) uint64 {
	return mix(fnv((14695981039346656037^uint64(kind))*1099511628211, s))
}

func fnv(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix is MurmurHash3's 64-bit finalizer.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
