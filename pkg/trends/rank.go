package trends

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"time"
)

// Window is a trending window length.
type Window string

// The windows GetTrending serves.
const (
	Window15m Window = "15m"
	Window1h  Window = "1h"
	Window24h Window = "24h"
)

// Windows lists every window, shortest first.
var Windows = []Window{Window15m, Window1h, Window24h}

// Duration is the window's length.
func (w Window) Duration() time.Duration {
	switch w {
	case Window15m:
		return 15 * time.Minute
	case Window1h:
		return time.Hour
	case Window24h:
		return 24 * time.Hour
	}
	return 0
}

// RisingFloor is the number of views below which a product is not "rising" in this window, and the
// smallest base its growth is measured against (so 1 -> 3 views is not +200%).
func (w Window) RisingFloor() int64 {
	switch w {
	case Window15m:
		return 10
	case Window1h:
		return 20
	}
	return 100
}

// MinGrowth is the smallest growth that counts as rising (+50% over the floored base).
const MinGrowth = 0.5

// MaxLimit is the most entries a snapshot keeps per list, and the largest `limit` GetTrending accepts.
const MaxLimit = 50

// Entry is a product in "top".
type Entry struct {
	ProductID string `json:"productId"`
	Views     int64  `json:"views"`
}

// RisingEntry is a product in "rising".
type RisingEntry struct {
	ProductID     string  `json:"productId"`
	Views         int64   `json:"views"`
	PreviousViews int64   `json:"previousViews"`
	Growth        float64 `json:"growth"`
}

// Growth is (views - previous) / max(previous, floor), rounded to 3 decimals. The floor keeps tiny
// bases from producing huge growth: with floor 10, 1 -> 3 is 0.2, 0 -> 12 is 1.2, 100 -> 160 is 0.6.
func Growth(views, previous, floor int64) float64 {
	base := max(previous, floor, 1)
	g := float64(views-previous) / float64(base)
	return math.Round(g*1000) / 1000
}

// Top ranks products by views (ties by product id), at most n.
func Top(views map[string]int64, n int) []Entry {
	out := make([]Entry, 0, min(len(views), n))
	for p, v := range views {
		if v > 0 {
			out = append(out, Entry{ProductID: p, Views: v})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := cmp.Compare(b.Views, a.Views); c != 0 {
			return c
		}
		return cmp.Compare(a.ProductID, b.ProductID)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Rising ranks products by Growth against the previous window (ties by views, then product id), at
// most n. A product is rising when it has at least floor views now and Growth >= MinGrowth.
func Rising(views, previous map[string]int64, floor int64, n int) []RisingEntry {
	var out []RisingEntry
	for p, v := range views {
		if v < floor {
			continue
		}
		prev := previous[p]
		g := Growth(v, prev, floor)
		if g < MinGrowth {
			continue
		}
		out = append(out, RisingEntry{ProductID: p, Views: v, PreviousViews: prev, Growth: g})
	}
	slices.SortFunc(out, func(a, b RisingEntry) int {
		if c := cmp.Compare(b.Growth, a.Growth); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Views, a.Views); c != 0 {
			return c
		}
		return cmp.Compare(a.ProductID, b.ProductID)
	})
	if len(out) > n {
		out = out[:n]
	}
	if out == nil {
		out = []RisingEntry{}
	}
	return out
}

// Counts are summed views over some minutes.
type Counts struct {
	Views           int64
	Products        map[string]int64
	Categories      map[string]int64
	ProductCategory map[string]string
}

func (c *Counts) add(views int64, products, categories map[string]int64, productCategory map[string]string) {
	if c.Products == nil {
		c.Products = map[string]int64{}
		c.Categories = map[string]int64{}
		c.ProductCategory = map[string]string{}
	}
	c.Views += views
	for p, n := range products {
		c.Products[p] += n
	}
	for k, n := range categories {
		c.Categories[k] += n
	}
	for p, k := range productCategory {
		c.ProductCategory[p] = pickCategory(c.ProductCategory[p], k)
	}
}

// inCategory returns the product views of the products of category (all when category is "").
func (c *Counts) inCategory(category string) map[string]int64 {
	if category == "" {
		return c.Products
	}
	out := map[string]int64{}
	for p, n := range c.Products {
		if c.ProductCategory[p] == category {
			out[p] = n
		}
	}
	return out
}

// byCategory splits the product views by category in one pass.
func (c *Counts) byCategory() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for p, n := range c.Products {
		k := c.ProductCategory[p]
		if k == "" {
			continue
		}
		m := out[k]
		if m == nil {
			m = map[string]int64{}
			out[k] = m
		}
		m[p] = n
	}
	return out
}

// topCategories returns the category names of cur and prev, at most n, by views now (ties by name),
// and whether some were left out.
func topCategories(cur, prev *Counts, n int) ([]string, bool) {
	seen := maps.Clone(cur.Categories)
	if seen == nil {
		seen = map[string]int64{}
	}
	for k := range prev.Categories {
		if _, ok := seen[k]; !ok {
			seen[k] = 0
		}
	}
	names := slices.Collect(maps.Keys(seen))
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(seen[b], seen[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	if len(names) > n {
		return names[:n], true
	}
	return names, false
}
