package jobs

import (
	"cmp"
	"math"
	"slices"
)

// merger combines the partial aggregates of a day's files, which must be added in capture.Less order
// (window, then partition): the result is then the same whatever order the files were processed in.
//
// Memory is bounded by the day's products, not its events: per product its counts, two Sketches (at
// most 4 KiB each) and Candidates co-view counters, plus the sessions still open (those with a view
// in the last SessionGap of capture windows).
type merger struct {
	cfg      Config
	index    map[string]int32
	products []*productAgg
	viewers  Sketch
	sessions Sketch
	counts   FileCounts
	files    int

	open  map[uint64]*openSession
	queue []queued // sessions in the order they were last touched (stale entries are skipped)
	qhead int

	pairedSessions   int64 // sessions that counted for "viewed together"
	oversizeSessions int64 // sessions with more than MaxSessionProducts products, left out

	scratch    []uint64 // union buffers, reused
	ids, union []int32
}

type productAgg struct {
	id, category            string
	views, carts, purchases int64
	viewers, sessions       Sketch
	together                topK
}

type openSession struct {
	products []int32 // global product indexes, sorted, distinct
	last     int64   // unix seconds of the last capture window with a view
}

type queued struct {
	key    uint64
	window int64
}

func newMerger(cfg Config) *merger {
	return &merger{cfg: cfg, index: map[string]int32{}, viewers: NewSketch(TotalPrecision), sessions: NewSketch(TotalPrecision),
		open: map[uint64]*openSession{}}
}

func (m *merger) product(id, category string) int32 {
	if i, ok := m.index[id]; ok {
		p := m.products[i]
		if category != "" && (p.category == "" || category < p.category) {
			p.category = category
		}
		return i
	}
	i := int32(len(m.products))
	m.index[id] = i
	m.products = append(m.products, &productAgg{id: id, category: category,
		viewers: NewSketch(ProductPrecision), sessions: NewSketch(ProductPrecision)})
	return i
}

// add merges one file's partial.
func (m *merger) add(p *Partial) {
	w := p.Window.Unix()
	m.closeSessions(w - int64(m.cfg.SessionGap.Seconds()))
	m.files++
	m.counts.add(p.Counts)
	m.viewers.mergeWith(p.Viewers, &m.scratch)
	m.sessions.mergeWith(p.SessionKeys, &m.scratch)
	remap := make([]int32, len(p.Products))
	for i := range p.Products {
		ps := &p.Products[i]
		gi := m.product(ps.ID, ps.Category)
		remap[i] = gi
		a := m.products[gi]
		a.views += ps.Views
		a.carts += ps.AddedToCart
		a.purchases += ps.Purchased
		a.viewers.mergeWith(ps.Viewers, &m.scratch)
		a.sessions.mergeWith(ps.Sessions, &m.scratch)
	}
	for _, f := range p.Sessions {
		ids := m.ids[:0]
		for _, x := range f.Products {
			ids = append(ids, remap[x])
		}
		slices.Sort(ids)
		m.ids = ids
		s := m.open[f.Key]
		if s == nil {
			s = &openSession{products: slices.Clone(slices.Compact(ids))}
			m.open[f.Key] = s
		} else {
			m.union = unionInt32(m.union[:0], s.products, ids)
			s.products = append(s.products[:0], m.union...)
		}
		s.last = w
		m.queue = append(m.queue, queued{key: f.Key, window: w})
	}
}

// closeSessions counts the pairs of every open session whose last view is in a window before
// `before`, oldest first.
func (m *merger) closeSessions(before int64) {
	for m.qhead < len(m.queue) && m.queue[m.qhead].window < before {
		q := m.queue[m.qhead]
		m.qhead++
		s := m.open[q.key]
		if s == nil || s.last != q.window {
			continue // touched again later (a newer entry follows), or already closed
		}
		m.pair(s.products)
		delete(m.open, q.key)
	}
	if m.qhead > 4096 && m.qhead > len(m.queue)/2 {
		m.queue = append(m.queue[:0], m.queue[m.qhead:]...)
		m.qhead = 0
	}
}

// finish closes every session.
func (m *merger) finish() { m.closeSessions(math.MaxInt64) }

// pair counts each ordered pair of distinct products a session viewed.
func (m *merger) pair(ids []int32) {
	if len(ids) < 2 {
		return
	}
	if len(ids) > m.cfg.MaxSessionProducts {
		m.oversizeSessions++
		return
	}
	m.pairedSessions++
	for _, a := range ids {
		t := &m.products[a].together
		for _, b := range ids {
			if a != b {
				t.add(b, m.cfg.Candidates)
			}
		}
	}
}

// unionInt32 appends the sorted, distinct union of sorted a and b to out.
func unionInt32(out, a, b []int32) []int32 {
	start := len(out)
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var v int32
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			v = a[i]
			i++
		case i >= len(a) || b[j] < a[i]:
			v = b[j]
			j++
		default:
			v = a[i]
			i++
			j++
		}
		if len(out) == start || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// topK counts the products viewed together with one product with the Space-Saving algorithm
// (Metwally et al., 2005) of capacity k: the k most frequent are kept; when full, a new product
// replaces the one with the smallest count and inherits that count as its possible error. For a
// product viewed with at most k others the counts are exact (err 0). The true count of a kept product
// is in [count-err, count]; the rollup uses the guaranteed count-err. Updates are applied in a fixed
// order (sessions closed oldest first), so the result is deterministic.
type topK struct {
	ids    []int32
	counts []uint32
	errs   []uint32
	// min is the smallest count once the summary is full, atMin how many entries have it: a
	// replacement then finds its victim by scanning only to the first entry at min, and the full scan
	// happens only when the last entry at min moves up.
	min, atMin uint32
}

func (t *topK) add(id int32, k int) {
	for i, x := range t.ids {
		if x == id {
			c := t.counts[i]
			t.counts[i] = c + 1
			if len(t.ids) == k && c == t.min {
				t.leaveMin()
			}
			return
		}
	}
	if len(t.ids) < k {
		t.ids = append(t.ids, id)
		t.counts = append(t.counts, 1)
		t.errs = append(t.errs, 0)
		if len(t.ids) == k {
			t.rescan()
		}
		return
	}
	// The first entry with the smallest count: the same victim a full scan would pick.
	mi := 0
	for i, c := range t.counts {
		if c == t.min {
			mi = i
			break
		}
	}
	t.ids[mi] = id
	t.errs[mi] = t.min
	t.counts[mi] = t.min + 1
	t.leaveMin()
}

// leaveMin records that one entry at min moved up.
func (t *topK) leaveMin() {
	t.atMin--
	if t.atMin == 0 {
		t.rescan()
	}
}

func (t *topK) rescan() {
	t.min, t.atMin = t.counts[0], 0
	for _, c := range t.counts {
		switch {
		case c < t.min:
			t.min, t.atMin = c, 1
		case c == t.min:
			t.atMin++
		}
	}
}

// Scored is a product and a score, best first in lists.
type Scored struct {
	ProductID string  `json:"productId"`
	Score     float64 `json:"score"`
}

// coViews is product a's day: the products viewed with it and their guaranteed session counts,
// best first (ties by product id).
func (m *merger) coViews(a *productAgg) []Scored {
	out := make([]Scored, 0, len(a.together.ids))
	for i, id := range a.together.ids {
		if n := a.together.counts[i] - a.together.errs[i]; n > 0 {
			out = append(out, Scored{ProductID: m.products[id].id, Score: float64(n)})
		}
	}
	sortScored(out)
	return out
}

func sortScored(s []Scored) {
	slices.SortFunc(s, func(x, y Scored) int {
		if c := cmp.Compare(y.Score, x.Score); c != 0 {
			return c
		}
		return cmp.Compare(x.ProductID, y.ProductID)
	})
}
