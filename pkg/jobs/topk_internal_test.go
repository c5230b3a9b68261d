package jobs

import (
	"math/rand/v2"
	"testing"
)

// Space-Saving keeps every product counted more than n/k times, and each kept count brackets the
// true count: count-err <= true <= count.
func TestTopKBrackets(t *testing.T) {
	const k = 8
	r := rand.New(rand.NewPCG(3, 4))
	truth := map[int32]uint32{}
	var tk topK
	n := 0
	for range 20000 {
		id := int32(r.IntN(200))
		if r.IntN(3) == 0 {
			id = int32(r.IntN(3)) // three heavy hitters
		}
		truth[id]++
		tk.add(id, k)
		n++
	}
	kept := map[int32]bool{}
	for i, id := range tk.ids {
		kept[id] = true
		c, e := tk.counts[i], tk.errs[i]
		if !(c-e <= truth[id] && truth[id] <= c) {
			t.Errorf("product %d: true %d not in [%d, %d]", id, truth[id], c-e, c)
		}
	}
	for id, c := range truth {
		if int(c) > n/k && !kept[id] {
			t.Errorf("product %d seen %d times (> n/k = %d) was dropped", id, c, n/k)
		}
	}
	if len(tk.ids) != k {
		t.Fatalf("%d kept, want %d", len(tk.ids), k)
	}
}

// naiveTopK is Space-Saving written plainly: the optimized topK must make the same choices.
type naiveTopK struct{ ids, counts, errs []int64 }

func (t *naiveTopK) add(id int64, k int) {
	for i, x := range t.ids {
		if x == id {
			t.counts[i]++
			return
		}
	}
	if len(t.ids) < k {
		t.ids, t.counts, t.errs = append(t.ids, id), append(t.counts, 1), append(t.errs, 0)
		return
	}
	mi := 0
	for i, c := range t.counts {
		if c < t.counts[mi] {
			mi = i
		}
	}
	t.ids[mi], t.errs[mi] = id, t.counts[mi]
	t.counts[mi]++
}

func TestTopKMatchesPlainSpaceSaving(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 9))
		k := 1 + r.IntN(16)
		var fast topK
		var slow naiveTopK
		for range 5000 {
			id := int32(r.IntN(1 + r.IntN(100)))
			fast.add(id, k)
			slow.add(int64(id), k)
		}
		for i := range slow.ids {
			if int64(fast.ids[i]) != slow.ids[i] || int64(fast.counts[i]) != slow.counts[i] || int64(fast.errs[i]) != slow.errs[i] {
				t.Fatalf("seed %d k %d: entry %d differs: (%d %d %d) vs (%d %d %d)", seed, k, i,
					fast.ids[i], fast.counts[i], fast.errs[i], slow.ids[i], slow.counts[i], slow.errs[i])
			}
		}
	}
}
