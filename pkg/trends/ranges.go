package trends

import (
	"slices"
)

// Range is an inclusive run of Event Hubs sequence numbers of one partition.
type Range struct {
	First int64 `json:"first"`
	Last  int64 `json:"last"`
}

// Ranges is a set of sequence numbers kept as sorted, disjoint, non-adjacent runs. Event Hubs numbers
// the events of a partition consecutively, so the batches applied to a document coalesce into one run;
// a hole stays only where a batch was parked on its last retry (or an event was poison) until the
// replay fills it. That is why an aggregate keeps the runs it has applied and not only the highest
// sequence number: a replayed parked event is older than what came after it, and must still count
// exactly once.
type Ranges []Range

// Contains reports whether seq is in the set.
func (rs Ranges) Contains(seq int64) bool {
	_, found := slices.BinarySearchFunc(rs, seq, func(r Range, s int64) int {
		switch {
		case r.Last < s:
			return -1
		case r.First > s:
			return 1
		}
		return 0
	})
	return found
}

// Max is the highest sequence number in the set, or -1 when it is empty.
func (rs Ranges) Max() int64 {
	if len(rs) == 0 {
		return -1
	}
	return rs[len(rs)-1].Last
}

// Union returns the set of both (neither is modified).
func (rs Ranges) Union(other Ranges) Ranges {
	out := make(Ranges, 0, len(rs)+len(other))
	out = append(out, rs...)
	out = append(out, other...)
	return normalize(out)
}

// Equal reports whether both hold the same runs.
func (rs Ranges) Equal(other Ranges) bool { return slices.Equal(rs, other) }

// RangesOf returns the set of the given sequence numbers (negative ones, which mean "unknown", are
// left out).
func RangesOf(seqs ...int64) Ranges {
	out := make(Ranges, 0, len(seqs))
	for _, s := range seqs {
		if s >= 0 {
			out = append(out, Range{s, s})
		}
	}
	return normalize(out)
}

// normalize sorts and merges overlapping or adjacent runs, in place.
func normalize(rs Ranges) Ranges {
	rs = slices.DeleteFunc(rs, func(r Range) bool { return r.First > r.Last || r.First < 0 })
	if len(rs) < 2 {
		return rs
	}
	slices.SortFunc(rs, func(a, b Range) int {
		switch {
		case a.First < b.First:
			return -1
		case a.First > b.First:
			return 1
		}
		return 0
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.First <= last.Last+1 {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Len is the number of runs.
func (rs Ranges) Len() int { return len(rs) }

// Min is the lowest sequence number in the set, or -1 when it is empty.
func (rs Ranges) Min() int64 {
	if len(rs) == 0 {
		return -1
	}
	return rs[0].First
}

// Within returns the part of the set inside [lo, hi] (a new slice).
func (rs Ranges) Within(lo, hi int64) Ranges {
	var out Ranges
	for _, r := range rs {
		if r.Last < lo || r.First > hi {
			continue
		}
		out = append(out, Range{max(r.First, lo), min(r.Last, hi)})
	}
	return out
}

// Coarsen returns the set with at most n runs (n >= 2) by dropping the smallest inner runs: the
// result is a subset of rs that keeps its lowest and highest runs, so Min and Max do not change.
// Dropping (not merging) is what makes it safe where the set means "decided": a subset only makes
// its owner believe fewer events decided, never more (see Progress).
func (rs Ranges) Coarsen(n int) Ranges {
	n = max(n, 2)
	if len(rs) <= n {
		return rs
	}
	out := slices.Clone(rs)
	for len(out) > n {
		small := 1
		for i := 2; i < len(out)-1; i++ {
			if out[i].Last-out[i].First < out[small].Last-out[small].First {
				small = i
			}
		}
		out = slices.Delete(out, small, small+1)
	}
	return out
}
