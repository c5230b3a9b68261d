// Package clickgen generates a realistic synthetic Contoso clickstream for the local run, the
// benchmarks and the documented workload: shoppers browse in sessions; products follow a Zipf
// popularity curve (a few bestsellers, a long tail); about 40% of traffic is anonymous (session id
// only); a small share of events is malformed or of other types. It is deterministic for a seed.
package clickgen

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/contoso/eventpipeline/pkg/events"
)

// Categories of the synthetic catalog.
var Categories = []string{"tools", "garden", "kitchen", "toys", "books", "electronics", "outdoor", "home", "sports", "beauty", "pets", "office"}

// Config shapes the workload.
type Config struct {
	Seed          uint64
	Products      int           // catalog size
	Shoppers      int           // distinct signed-in users
	AnonymousRate float64       // share of sessions without a user id
	MalformedRate float64       // share of events that are malformed
	OtherTypeRate float64       // share of valid CloudEvents of other types (skipped)
	BinaryRate    float64       // share of clicks sent in CloudEvents binary mode
	CartRate      float64       // share of clicks that are add-to-cart
	PurchaseRate  float64       // share of clicks that are purchases
	Partitions    int           // Event Hubs partitions (partition key = viewer)
	Start         time.Time     // event time of the first click
	Rate          time.Duration // mean time between two clicks site-wide
}

// Default is the documented workload (docs/performance.md): 10,000 products, 50,000 shoppers, 40%
// anonymous, 0.5% malformed, 1% other types, 10% binary mode, 4 partitions, ~115 clicks per second
// (10 million a day).
func Default() Config {
	return Config{Seed: 1, Products: 10_000, Shoppers: 50_000, AnonymousRate: 0.4, MalformedRate: 0.005,
		OtherTypeRate: 0.01, BinaryRate: 0.1, CartRate: 0.05, PurchaseRate: 0.01, Partitions: 4,
		Start: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC), Rate: time.Second / 115}
}

// Event is one generated Event Hubs event.
type Event struct {
	Body       []byte
	Properties map[string]any // binary-mode attributes
	Partition  int
	Viewer     string // "" for malformed / other events
	Time       time.Time
	Malformed  bool
	Kind       string // event type, "malformed" or "other"
}

type session struct {
	viewer   string
	userID   string
	id       string
	left     int
	category int
}

// Generator produces events.
type Generator struct {
	cfg      Config
	r        *rand.Rand
	zipf     *rand.Zipf
	active   []*session
	now      time.Time
	seq      int
	sessions int
}

// New returns a generator for cfg.
func New(cfg Config) *Generator {
	r := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	return &Generator{cfg: cfg, r: r, zipf: rand.NewZipf(r, 1.15, 4, uint64(cfg.Products-1)), now: cfg.Start}
}

// ProductID names product n.
func ProductID(n int) string { return fmt.Sprintf("p-%05d", n) }

// CategoryOf is product n's category.
func CategoryOf(n int) string { return Categories[n%len(Categories)] }

// PartitionOf maps a partition key to a partition like a stable hash would.
func PartitionOf(key string, partitions int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(partitions))
}

func (g *Generator) newSession() *session {
	g.sessions++
	s := &session{id: fmt.Sprintf("s-%08x", g.r.Uint32()), left: 1 + g.r.IntN(12), category: g.r.IntN(len(Categories))}
	if g.r.Float64() >= g.cfg.AnonymousRate {
		s.userID = fmt.Sprintf("u-%06d", g.r.IntN(g.cfg.Shoppers))
		s.viewer = s.userID
	} else {
		s.viewer = s.id
	}
	return s
}

// Next returns the next event.
func (g *Generator) Next() Event {
	g.seq++
	g.now = g.now.Add(time.Duration(g.r.ExpFloat64() * float64(g.cfg.Rate)))
	at := g.now.Truncate(time.Millisecond)
	if len(g.active) < 200 || g.r.IntN(10) == 0 {
		g.active = append(g.active, g.newSession())
	}
	i := g.r.IntN(len(g.active))
	s := g.active[i]
	s.left--
	if s.left <= 0 {
		g.active[i] = g.active[len(g.active)-1]
		g.active = g.active[:len(g.active)-1]
	}
	ev := Event{Partition: PartitionOf(s.viewer, g.cfg.Partitions), Time: at}
	id := fmt.Sprintf("c-%d-%08x", g.seq, g.r.Uint32())
	switch x := g.r.Float64(); {
	case x < g.cfg.MalformedRate:
		ev.Malformed, ev.Kind = true, "malformed"
		switch g.r.IntN(4) {
		case 0:
			ev.Body = []byte("GET /product/p-00042 HTTP/1.1")
		case 1:
			ev.Body = fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"/web","type":%q,"time":%q,"data":{"userId":%q}}`,
				id, events.TypeProductViewed, at.Format(time.RFC3339Nano), s.viewer)
		case 2:
			ev.Body = fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"/web","type":%q,"data":{"productId":"p-1"`, id, events.TypeProductViewed)
		default:
			ev.Body = fmt.Appendf(nil, `{"productId":%q,"userId":%q}`, ProductID(1), s.viewer)
		}
		return ev
	case x < g.cfg.MalformedRate+g.cfg.OtherTypeRate:
		ev.Kind = "other"
		ev.Body = fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"/web","type":"com.contoso.search.performed","time":%q,"data":{"query":"hammer"}}`,
			id, at.Format(time.RFC3339Nano))
		return ev
	}
	// Mostly within the session's category, sometimes anywhere; popularity is Zipf.
	n := int(g.zipf.Uint64())
	if g.r.IntN(4) != 0 {
		n = n - n%len(Categories) + s.category
		if n >= g.cfg.Products {
			n -= len(Categories)
		}
	}
	typ := events.TypeProductViewed
	switch y := g.r.Float64(); {
	case y < g.cfg.PurchaseRate:
		typ = events.TypePurchased
	case y < g.cfg.PurchaseRate+g.cfg.CartRate:
		typ = events.TypeAddedToCart
	}
	ev.Kind, ev.Viewer = typ, s.viewer
	data := fmt.Sprintf(`{"sessionId":%q,"productId":%q,"category":%q,"page":"/p/%s"}`, s.id, ProductID(n), CategoryOf(n), ProductID(n))
	if s.userID != "" {
		data = fmt.Sprintf(`{"userId":%q,"sessionId":%q,"productId":%q,"category":%q,"page":"/p/%s"}`, s.userID, s.id, ProductID(n), CategoryOf(n), ProductID(n))
	}
	if g.r.Float64() < g.cfg.BinaryRate {
		ev.Body = []byte(data)
		ev.Properties = map[string]any{"cloudEvents:specversion": "1.0", "cloudEvents:id": id, "cloudEvents:source": "/contoso/app",
			"cloudEvents:type": typ, "cloudEvents:time": at.Format(time.RFC3339Nano), "content-type": "application/json"}
		return ev
	}
	ev.Body = fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"/contoso/web","type":%q,"time":%q,"datacontenttype":"application/json","data":%s}`,
		id, typ, at.Format(time.RFC3339Nano), data)
	return ev
}

// Sessions is how many sessions were started so far.
func (g *Generator) Sessions() int { return g.sessions }
