package jobs

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/contoso/eventpipeline/pkg/clickstream"
	"github.com/contoso/eventpipeline/pkg/events"
)

// Partial is the aggregate of one Capture file: everything the day's merge needs, so that a file is
// read once whichever trigger reads it. It is stored (gob) in the reports container under
// partials/<job>/<day>/<file id>.gob.
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

// builder accumulates a file's clicks.
type builder struct {
	index    map[string]int32
	products []productAcc
	sessions map[uint64][]int32
	viewers  []uint64
	sessKeys []uint64
	counts   FileCounts
}

type productAcc struct {
	id, category                string
	views, carts, purchases     int64
	viewerHashes, sessionHashes []uint64
}

func newBuilder() *builder {
	return &builder{index: map[string]int32{}, sessions: map[uint64][]int32{}, counts: FileCounts{Announced: -1}}
}

// sessionKey is the session a click belongs to: its session id, else (a signed-in click without
// one) the user, which makes the user's day one session.
func sessionKey(c *events.Click) string {
	if c.SessionID != "" {
		return "s:" + c.SessionID
	}
	return "u:" + c.UserID
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
		session := Hash(sessionKey(c))
		b.viewers = append(b.viewers, viewer)
		b.sessKeys = append(b.sessKeys, session)
		switch c.Type {
		case events.TypeProductViewed:
			b.counts.Views++
			p.views++
			p.viewerHashes = append(p.viewerHashes, viewer)
			p.sessionHashes = append(p.sessionHashes, session)
			b.sessions[session] = append(b.sessions[session], pi)
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

// finish builds the partial: products sorted by id, sketches, session fragments sorted by key.
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
		p.Products[newIdx] = ProductStats{ID: a.id, Category: a.category, Views: a.views, AddedToCart: a.carts,
			Purchased: a.purchases, Viewers: SketchOf(ProductPrecision, a.viewerHashes), Sessions: SketchOf(ProductPrecision, a.sessionHashes)}
	}
	p.Sessions = make([]SessionFragment, 0, len(b.sessions))
	for key, idx := range b.sessions {
		ps := make([]int32, len(idx))
		for i, x := range idx {
			ps[i] = remap[x]
		}
		slices.Sort(ps)
		p.Sessions = append(p.Sessions, SessionFragment{Key: key, Products: slices.Compact(ps)})
	}
	slices.SortFunc(p.Sessions, func(x, y SessionFragment) int {
		switch {
		case x.Key < y.Key:
			return -1
		case x.Key > y.Key:
			return 1
		}
		return 0
	})
	p.Viewers = SketchOf(TotalPrecision, b.viewers)
	p.SessionKeys = SketchOf(TotalPrecision, b.sessKeys)
	return p
}

// encode serializes a partial.
func (p *Partial) encode() ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(p); err != nil {
		return nil, fmt.Errorf("encode partial %s: %w", p.File, err)
	}
	return buf.Bytes(), nil
}

// decodePartial reads a stored partial; a partial of another version is ErrNotFound (recompute it).
func decodePartial(b []byte) (*Partial, error) {
	var p Partial
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&p); err != nil {
		return nil, fmt.Errorf("decode partial: %w", err)
	}
	if p.Version != partialVersion {
		return nil, fmt.Errorf("partial version %d (want %d): %w", p.Version, partialVersion, ErrNotFound)
	}
	return &p, nil
}
