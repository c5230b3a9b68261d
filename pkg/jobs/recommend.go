package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// "Viewed together" recommendations.
//
// For each day D and products a, b: c_D(a,b) is the number of sessions of D that viewed both (a
// session's views in the day's Capture files, split after SessionGap without a view; counted with
// Space-Saving, see topK). A product's score for b decays exponentially with half-life H (default 7
// days) and adds each day's count:
//
//	s_D(a,b) = c_D(a,b) + s_P(a,b) · 2^(-(D-P)/H)        P: the last day applied before D
//
// Kept per product (document in the Cosmos DB container "recommendations", id and partition key
// /productId): the Keep best candidates with s >= PruneBelow; served (Items): those with
// s >= MinSupport (default 3), best first, ties by product id, at most 20.
//
// Idempotent: the document keeps the candidates before its last day (Previous, PreviousDay), so
// re-running day D recomputes s_D from s_P instead of adding c_D twice. A day older than the
// document's is not applied (a re-run of an old day does not rewrite newer recommendations). A product
// with no co-view on D keeps its document untouched: its scores are as of its Day, and decay is
// applied the next time it has one.

// Recommendation is one product's document in the recommendations container.
type Recommendation struct {
	ID        string `json:"id"`
	ProductID string `json:"productId"`
	Category  string `json:"category,omitempty"`
	// Day is the last day applied; Items are served, Candidates carried to the next day.
	Day        string   `json:"day"`
	Items      []Scored `json:"items"`
	Candidates []Scored `json:"candidates,omitempty"`
	// Previous are the candidates as of PreviousDay, the state Day was applied to.
	PreviousDay string    `json:"previousDay,omitempty"`
	Previous    []Scored  `json:"previous,omitempty"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// RecommendationStats count one day's application.
type RecommendationStats struct {
	Updated   int `json:"updated"`   // documents written
	Unchanged int `json:"unchanged"` // products with no co-view today and a document already
	Newer     int `json:"newer"`     // documents already past this day, left alone
	InvalidID int `json:"invalidId"` // product ids that cannot be document ids
}

// next is the product's document after day from its current one (nil: none) and the day's
// co-views. ok is false when the day must not be applied (the document is past it).
func (c Config) next(cur *Recommendation, productID, category string, day time.Time, today []Scored, now time.Time) (Recommendation, bool) {
	d := dayString(day)
	var base []Scored
	baseDay := ""
	if cur != nil {
		switch {
		case cur.Day > d:
			return Recommendation{}, false
		case cur.Day == d:
			base, baseDay = cur.Previous, cur.PreviousDay
		default:
			base, baseDay = cur.Candidates, cur.Day
		}
		if category == "" {
			category = cur.Category
		}
	}
	scores := make(map[string]float64, len(base)+len(today))
	if baseDay != "" {
		if bd, err := ParseDay(baseDay); err == nil && bd.Before(day) {
			f := math.Exp2(-day.Sub(bd).Hours() / c.HalfLife.Hours())
			for _, s := range base {
				scores[s.ProductID] = s.Score * f
			}
		}
	}
	for _, s := range today {
		scores[s.ProductID] += s.Score
	}
	cands := make([]Scored, 0, len(scores))
	for id, v := range scores {
		v = math.Round(v*1e6) / 1e6
		if v >= c.PruneBelow && id != productID {
			cands = append(cands, Scored{ProductID: id, Score: v})
		}
	}
	sortScored(cands)
	if len(cands) > c.Keep {
		cands = cands[:c.Keep]
	}
	items := make([]Scored, 0, c.Items)
	for _, s := range cands {
		if len(items) == c.Items || s.Score < c.MinSupport {
			break
		}
		items = append(items, s)
	}
	return Recommendation{ID: productID, ProductID: productID, Category: category, Day: d, Items: items,
		Candidates: cands, PreviousDay: baseDay, Previous: base, UpdatedAt: now.UTC()}, true
}

// applyRecommendations writes the day's recommendations of every product of the merge.
func (j *Rollup) applyRecommendations(ctx context.Context, day time.Time, m *merger) (RecommendationStats, error) {
	cfg := j.cfg()
	var st RecommendationStats
	type result struct{ updated, unchanged, newer bool }
	results := make([]result, len(m.products))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Concurrency)
	for i, p := range m.products {
		if ValidProductID(p.id) != nil {
			st.InvalidID++
			continue
		}
		g.Go(func() error {
			today := m.coViews(p)
			cur, _, err := j.Stores.Recommendations.Get(gctx, p.id, p.id)
			switch {
			case errors.Is(err, docstore.ErrNotFound):
				err = nil
			case err != nil:
				return fmt.Errorf("read recommendations of %s: %w", p.id, err)
			default:
				if len(today) == 0 && (p.category == "" || cur.Category == p.category) {
					results[i].unchanged = true
					return nil
				}
			}
			var curp *Recommendation
			if err == nil && cur.ProductID != "" {
				curp = &cur
			}
			doc, ok := cfg.next(curp, p.id, p.category, day, today, j.now())
			if !ok {
				results[i].newer = true
				return nil
			}
			if _, err := j.Stores.Recommendations.Put(gctx, p.id, p.id, doc, docstore.PutOptions{TTL: cfg.RecommendationTTL}); err != nil {
				return fmt.Errorf("write recommendations of %s: %w", p.id, err)
			}
			results[i].updated = true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return st, err
	}
	for _, r := range results {
		switch {
		case r.updated:
			st.Updated++
		case r.unchanged:
			st.Unchanged++
		case r.newer:
			st.Newer++
		}
	}
	return st, nil
}

// MaxProductIDLen bounds a product id (as the API documents).
const MaxProductIDLen = 128

// ValidProductID checks a product id for use as a document id and in the API: 1 to 128 bytes of
// UTF-8, no / \ ? # (Cosmos DB ids), no control characters, no surrounding spaces.
func ValidProductID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: product id is empty", ErrInvalid)
	case len(id) > MaxProductIDLen:
		return fmt.Errorf("%w: product id is longer than %d bytes", ErrInvalid, MaxProductIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: product id is not UTF-8", ErrInvalid)
	case strings.ContainsAny(id, `/\?#`):
		return fmt.Errorf("%w: product id contains / \\ ? or #", ErrInvalid)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: product id contains control characters", ErrInvalid)
	case strings.TrimSpace(id) != id:
		return fmt.Errorf("%w: product id has surrounding spaces", ErrInvalid)
	}
	return nil
}

// Sources of a recommendations answer.
const (
	SourceViewedTogether = "viewed-together"
	SourceTrending       = "trending-fallback"
)

// Answer is GetRecommendations' response.
type Answer struct {
	ProductID string `json:"productId"`
	// Source says where Items come from; Fallback is true for the trending fallback.
	Source   string `json:"source"`
	Fallback bool   `json:"fallback"`
	// Category is the category whose trending products the fallback serves ("" site-wide).
	Category string `json:"category,omitempty"`
	// AsOf is the last day the viewed-together scores include.
	AsOf  string   `json:"asOf,omitempty"`
	Items []Scored `json:"items"`
}

// Trending is what is trending (by views over the last 24 hours) in a category, or site-wide for
// "": pkg/trends serves it. Nothing trending yet is an empty list, not an error.
type Trending interface {
	TopInCategory(ctx context.Context, category string, limit int) ([]Scored, error)
}

// Categories finds a product's category when its recommendations document has none (the product
// catalog); "" when unknown.
type Categories interface {
	CategoryOf(ctx context.Context, productID string) (string, error)
}

// Recommender serves recommendations.
type Recommender struct {
	Store      docstore.Collection[Recommendation]
	Trending   Trending   // nil: no fallback (empty items)
	Categories Categories // nil: only the recommendations document knows categories
}

// MaxItems is the largest `limit`.
const MaxItems = 20

// Get answers for productID: its viewed-together products, or, when it has none, the trending
// products of its category (without itself), saying so. productID must pass ValidProductID and
// limit be 1..MaxItems.
func (r *Recommender) Get(ctx context.Context, productID string, limit int) (Answer, error) {
	if err := ValidProductID(productID); err != nil {
		return Answer{}, err
	}
	if limit < 1 || limit > MaxItems {
		return Answer{}, fmt.Errorf("%w: limit %d is not 1..%d", ErrInvalid, limit, MaxItems)
	}
	doc, _, err := r.Store.Get(ctx, productID, productID)
	if err != nil && !errors.Is(err, docstore.ErrNotFound) {
		return Answer{}, wrap("Recommender.Get", err)
	}
	if err == nil && len(doc.Items) > 0 {
		items := doc.Items
		if len(items) > limit {
			items = items[:limit]
		}
		return Answer{ProductID: productID, Source: SourceViewedTogether, AsOf: doc.Day, Items: items}, nil
	}
	a := Answer{ProductID: productID, Source: SourceTrending, Fallback: true, Category: doc.Category, Items: []Scored{}}
	if a.Category == "" && r.Categories != nil {
		if a.Category, err = r.Categories.CategoryOf(ctx, productID); err != nil {
			return Answer{}, wrap("Recommender.Get", err)
		}
	}
	if r.Trending == nil {
		return a, nil
	}
	top, err := r.Trending.TopInCategory(ctx, a.Category, limit+1)
	if err != nil {
		return Answer{}, wrap("Recommender.Get", err)
	}
	for _, s := range top {
		if s.ProductID != productID && len(a.Items) < limit {
			a.Items = append(a.Items, s)
		}
	}
	return a, nil
}
