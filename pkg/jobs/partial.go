package jobs

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/contoso/eventpipeline/pkg/clickstream"
	"github.com/contoso/eventpipeline/pkg/events"
)

// Partial is the aggregate of one Capture file: everything the day's merge needs, so that a file is
// read once whichever trigger reads it. It is stored (codec.go) in the reports container under
// partials/<job>/<day>/<file id>.bin.
type Partial struct {
	Version   int
	File      string
	Partition string
	Window    time.Time
	Counts    FileCounts
	Products  []ProductStats    // sorted by ID
	Sessions  []SessionFragment // sorted by Key
	// Viewers and SessionKeys count the file's distinct viewers and sessions over every click.
	Viewers     Sketch
	SessionKeys Sketch
}

// partialVersion changes when Partial changes incompatibly; a stored partial of another version is
// recomputed from its Capture file.
const partialVersion = 1

// ProductStats are one product's counts in a file. Viewers and Sessions count the distinct viewers
// (user id, else session id) and sessions of its views.
type ProductStats struct {
	ID          string
	Category    string
	Views       int64
	AddedToCart int64
	Purchased   int64
	Viewers     Sketch
	Sessions    Sketch
}

// SessionFragment is what one session viewed in a file: indexes into Products, sorted and distinct.
// A session spans files (capture windows, even partitions); the merge joins its fragments.
type SessionFragment struct {
	Key      uint64
	Products []int32
}

// FileCounts count a file's events by outcome.
type FileCounts struct {
	Events      int64 `json:"events"`      // records in the file
	Clicks      int64 `json:"clicks"`      // valid clicks of the three click types
	Views       int64 `json:"views"`       // product views among them
	AddedToCart int64 `json:"addedToCart"` // add-to-cart clicks
	Purchased   int64 `json:"purchased"`   // purchase clicks
	Skipped     int64 `json:"skipped"`     // valid CloudEvents of other types
	Poison      int64 `json:"poison"`      // events that are not valid clicks
	// PoisonReasons counts poison events by the kind of problem (the reason up to its first colon).
	PoisonReasons map[string]int64 `json:"poisonReasons,omitempty"`
	// Announced is the record count CaptureFileCreated announced (-1 when read without one);
	// a difference with Events is reported, not treated as corruption.
	Announced int64 `json:"announced"`
}

func (c *FileCounts) add(o FileCounts) {
	c.Events += o.Events
	c.Clicks += o.Clicks
	c.Views += o.Views
	c.AddedToCart += o.AddedToCart
	c.Purchased += o.Purchased
	c.Skipped += o.Skipped
	c.Poison += o.Poison
	for k, v := range o.PoisonReasons {
		if c.PoisonReasons == nil {
			c.PoisonReasons = map[string]int64{}
		}
		c.PoisonReasons[k] += v
	}
}

// builder accumulates a file's clicks: counts per product, and one entry per view (product,
// viewer, session) that finish sorts into the distinct sets and the session fragments.
type builder struct {
	index    map[string]int32
	products []productAcc
	views    []viewEntry
	// byViewer and bySession are finish's scratch: the views' hashes grouped by product.
	byViewer, bySession []uint64
	viewers             []uint64 // every click's viewer
	sessKeys            []uint64 // every click's session
	counts              FileCounts
}

type productAcc struct {
	id, category            string
	views, carts, purchases int64
}

type viewEntry struct {
	product         int32
	viewer, session uint64
}

// builders are recycled across files: their slices and index grow to a file's size once.
var builders = sync.Pool{New: func() any { return &builder{index: map[string]int32{}} }}

func newBuilder() *builder {
	b := builders.Get().(*builder)
	b.counts = FileCounts{Announced: -1}
	return b
}

// release returns the builder for another file; the partial finish made shares nothing with it.
func (b *builder) release() {
	clear(b.index)
	b.products, b.views, b.viewers, b.sessKeys = b.products[:0], b.views[:0], b.viewers[:0], b.sessKeys[:0]
	builders.Put(b)
}

// sessionHash identifies the session a click belongs to: its session id, else (a signed-in click
// without one) the user, which makes the user's day one session. The two kinds hash apart.
func sessionHash(c *events.Click) uint64 {
	if c.SessionID != "" {
		return hashKind('s', c.SessionID)
	}
	return hashKind('u', c.UserID)
}

// add takes a decoded batch of the file.
func (b *builder) add(d clickstream.Decoded) {
	b.counts.Skipped += int64(d.Skipped)
	b.counts.Poison += int64(len(d.Poison))
	for i := range d.Poison {
		if b.counts.PoisonReasons == nil {
			b.counts.PoisonReasons = map[string]int64{}
		}
		b.counts.PoisonReasons[reasonKind(d.Poison[i].Reason)]++
	}
	for i := range d.Clicks {
		c := &d.Clicks[i].Click
		pi, ok := b.index[c.ProductID]
		if !ok {
			pi = int32(len(b.products))
			b.index[c.ProductID] = pi
			b.products = append(b.products, productAcc{id: c.ProductID, category: c.Category})
		}
		p := &b.products[pi]
		if c.Category != "" && (p.category == "" || c.Category < p.category) {
			// Clicks may disagree; the smallest name wins so the choice does not depend on order.
			p.category = c.Category
		}
		b.counts.Clicks++
		viewer := Hash(c.Viewer())
		session := sessionHash(c)
		b.viewers = append(b.viewers, viewer)
		b.sessKeys = append(b.sessKeys, session)
		switch c.Type {
		case events.TypeProductViewed:
			b.counts.Views++
			p.views++
			b.views = append(b.views, viewEntry{product: pi, viewer: viewer, session: session})
		case events.TypeAddedToCart:
			b.counts.AddedToCart++
			p.carts++
		case events.TypePurchased:
			b.counts.Purchased++
			p.purchases++
		}
	}
}

// reasonKind is the kind of a poison reason: its text up to the first colon (the error kind of
// pkg/events, e.g. "not a CloudEvent", "data has no productId").
func reasonKind(reason string) string {
	k, _, _ := strings.Cut(reason, ":")
	k = strings.TrimSpace(k)
	if len(k) > 60 {
		k = k[:60]
	}
	return k
}

// finish builds the partial: products sorted by id with their distinct viewers and sessions,
// session fragments sorted by key.
func (b *builder) finish(file, partition string, window time.Time) *Partial {
	order := make([]int32, len(b.products))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int { return strings.Compare(b.products[x].id, b.products[y].id) })
	remap := make([]int32, len(b.products))
	p := &Partial{Version: partialVersion, File: file, Partition: partition, Window: window.UTC(), Counts: b.counts,
		Products: make([]ProductStats, len(order))}
	for newIdx, old := range order {
		remap[old] = int32(newIdx)
		a := &b.products[old]
		p.Products[newIdx] = ProductStats{ID: a.id, Category: a.category, Views: a.views, AddedToCart: a.carts, Purchased: a.purchases,
			Viewers: NewSketch(ProductPrecision), Sessions: NewSketch(ProductPrecision)}
	}
	for i := range b.views {
		b.views[i].product = remap[b.views[i].product]
	}
	vs := b.views
	// Distinct viewers and sessions of each product: the views grouped by product with a counting
	// sort (product indexes are dense), each group's hashes then sorted by SketchOf.
	start := make([]int, len(p.Products)+1)
	for _, v := range vs {
		start[v.product+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	viewerHashes := slices.Grow(b.byViewer[:0], len(vs))[:len(vs)]
	sessionHashes := slices.Grow(b.bySession[:0], len(vs))[:len(vs)]
	next := slices.Clone(start[:len(p.Products)])
	for _, v := range vs {
		viewerHashes[next[v.product]] = v.viewer
		sessionHashes[next[v.product]] = v.session
		next[v.product]++
	}
	b.byViewer, b.bySession = viewerHashes, sessionHashes
	for i := range p.Products {
		lo, hi := start[i], start[i+1]
		if lo == hi {
			continue
		}
		p.Products[i].Viewers = SketchOf(ProductPrecision, viewerHashes[lo:hi])
		p.Products[i].Sessions = SketchOf(ProductPrecision, sessionHashes[lo:hi])
	}
	// Session fragments: the views grouped by session, products distinct and sorted.
	slices.SortFunc(vs, func(x, y viewEntry) int {
		switch {
		case x.session < y.session:
			return -1
		case x.session > y.session:
			return 1
		}
		return int(x.product - y.product)
	})
	for i := 0; i < len(vs); {
		j := i
		for j < len(vs) && vs[j].session == vs[i].session {
			j++
		}
		ids := make([]int32, 0, j-i)
		for _, v := range vs[i:j] {
			if len(ids) == 0 || ids[len(ids)-1] != v.product {
				ids = append(ids, v.product)
			}
		}
		p.Sessions = append(p.Sessions, SessionFragment{Key: vs[i].session, Products: ids})
		i = j
	}
	p.Viewers = SketchOf(TotalPrecision, b.viewers)
	p.SessionKeys = SketchOf(TotalPrecision, b.sessKeys)
	return p
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
