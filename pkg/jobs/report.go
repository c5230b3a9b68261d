package jobs

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/events"
)

// The reports of a day, in the reports container (Blob "reports", or LOCAL_DATA_DIR/reports):
//
//	daily/<YYYY-MM-DD>/products.csv   one row per product, by views (then product id)
//	daily/<YYYY-MM-DD>/summary.json   the day's totals, files, poison reasons and top products
//
// Both are a function of the day's Capture files only (no run id, no timestamps), so re-running a
// day rewrites the same bytes.

// ProductRow is one line of products.csv.
type ProductRow struct {
	ProductID     string
	Category      string
	Views         int64
	UniqueViewers int64
	Sessions      int64
	AddedToCart   int64
	Purchased     int64
}

// productsCSVHeader is the first line of products.csv.
var productsCSVHeader = []string{"productId", "category", "views", "uniqueViewers", "sessions", "addedToCart", "purchased", "cartRate", "conversionRate"}

// rate is n/d with 4 decimals; empty (undefined) without views.
func rate(n, d int64) string {
	if d == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(n)/float64(d), 'f', 4, 64)
}

func productsCSV(rows []ProductRow) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(productsCSVHeader); err != nil {
		return nil, err
	}
	for _, r := range rows {
		rec := []string{r.ProductID, r.Category, strconv.FormatInt(r.Views, 10), strconv.FormatInt(r.UniqueViewers, 10),
			strconv.FormatInt(r.Sessions, 10), strconv.FormatInt(r.AddedToCart, 10), strconv.FormatInt(r.Purchased, 10),
			rate(r.AddedToCart, r.Views), rate(r.Purchased, r.Views)}
		if err := w.Write(rec); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// Summary is summary.json.
type Summary struct {
	Job    string `json:"job"`
	Day    string `json:"day"`
	Period Period `json:"period"`
	Files  struct {
		Merged  int      `json:"merged"`
		Corrupt []string `json:"corrupt"` // names of the files left out, each dead-lettered
		// AnnouncedMismatch lists files whose record count differs from CaptureFileCreated's eventCount.
		AnnouncedMismatch []string `json:"announcedMismatch,omitempty"`
	} `json:"files"`
	Events        int64            `json:"events"`
	Clicks        int64            `json:"clicks"`
	Views         int64            `json:"views"`
	AddedToCart   int64            `json:"addedToCart"`
	Purchased     int64            `json:"purchased"`
	Skipped       int64            `json:"skipped"`
	Poison        int64            `json:"poison"`
	PoisonReasons map[string]int64 `json:"poisonReasons"`
	Products      int              `json:"products"`
	// UniqueViewers and Sessions are distinct over every click of the day (HyperLogLog, 0.8%).
	UniqueViewers  int64    `json:"uniqueViewers"`
	Sessions       int64    `json:"sessions"`
	CartRate       *float64 `json:"cartRate"`
	ConversionRate *float64 `json:"conversionRate"`
	TopProducts    []struct {
		ProductID string `json:"productId"`
		Views     int64  `json:"views"`
	} `json:"topProducts"`
	ViewedTogether struct {
		PairedSessions   int64 `json:"pairedSessions"`
		OversizeSessions int64 `json:"oversizeSessions"`
		Products         int   `json:"products"` // products with at least one co-viewed product
	} `json:"viewedTogether"`
	Method map[string]string `json:"method"`
}

// Period is the time a run covered, [Start, End).
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

func ratePtr(n, d int64) *float64 {
	if d == 0 {
		return nil
	}
	v := float64(int64(float64(n)/float64(d)*1e6+0.5)) / 1e6
	return &v
}

// dayReport is the rollup of a day, ready to write.
type dayReport struct {
	rows    []ProductRow
	summary Summary
}

func (m *merger) report(day time.Time, corrupt, mismatched []string) dayReport {
	rows := make([]ProductRow, 0, len(m.products))
	together := 0
	for _, p := range m.products {
		rows = append(rows, ProductRow{ProductID: p.id, Category: p.category, Views: p.views, UniqueViewers: p.viewers.Count(),
			Sessions: p.sessions.Count(), AddedToCart: p.carts, Purchased: p.purchases})
		if len(p.together.ids) > 0 {
			together++
		}
	}
	slices.SortFunc(rows, func(a, b ProductRow) int {
		if c := cmp.Compare(b.Views, a.Views); c != 0 {
			return c
		}
		return cmp.Compare(a.ProductID, b.ProductID)
	})
	s := Summary{Job: JobRollup, Day: dayString(day), Period: Period{Start: day, End: day.AddDate(0, 0, 1)}}
	s.Files.Merged = m.files
	s.Files.Corrupt = append([]string{}, corrupt...)
	s.Files.AnnouncedMismatch = mismatched
	c := m.counts
	s.Events, s.Clicks, s.Views, s.AddedToCart, s.Purchased, s.Skipped, s.Poison = c.Events, c.Clicks, c.Views, c.AddedToCart, c.Purchased, c.Skipped, c.Poison
	s.PoisonReasons = c.PoisonReasons
	if s.PoisonReasons == nil {
		s.PoisonReasons = map[string]int64{}
	}
	s.Products = len(rows)
	s.UniqueViewers, s.Sessions = m.viewers.Count(), m.sessions.Count()
	s.CartRate, s.ConversionRate = ratePtr(c.AddedToCart, c.Views), ratePtr(c.Purchased, c.Views)
	for _, r := range rows[:min(10, len(rows))] {
		s.TopProducts = append(s.TopProducts, struct {
			ProductID string `json:"productId"`
			Views     int64  `json:"views"`
		}{r.ProductID, r.Views})
	}
	if s.TopProducts == nil {
		s.TopProducts = s.TopProducts[:0:0]
	}
	s.ViewedTogether.PairedSessions, s.ViewedTogether.OversizeSessions, s.ViewedTogether.Products = m.pairedSessions, m.oversizeSessions, together
	s.Method = map[string]string{
		"day":            "files whose Capture window starts on the UTC day (≈ enqueued time)",
		"uniqueViewers":  "distinct user id, else session id; exact below 512 per product, else HyperLogLog 2^12 (±1.6%); day total HyperLogLog 2^14 (±0.8%)",
		"sessions":       "distinct session id (a signed-in click without one: its user); same estimator as uniqueViewers",
		"conversionRate": "purchased / views; cartRate = addedToCart / views",
		"viewedTogether": fmt.Sprintf("ordered pairs of distinct products viewed in one session (sessions split after %s without a view, at most %d products); Space-Saving top %d per product", m.cfg.SessionGap, m.cfg.MaxSessionProducts, m.cfg.Candidates),
	}
	return dayReport{rows: rows, summary: s}
}

func (r dayReport) summaryJSON() ([]byte, error) {
	b, err := json.MarshalIndent(r.summary, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Completed is the data of com.contoso.batch.job.completed
// (docs/schemas/com.contoso.batch.job.completed.v1.json).
type Completed struct {
	Job        string           `json:"job"`
	RunID      string           `json:"runId"`
	Period     Period           `json:"period"`
	Outputs    []Output         `json:"outputs"`
	Counts     map[string]int64 `json:"counts"`
	DurationMs int64            `json:"durationMs"`
}

// Output is one written object.
type Output struct {
	Name        string `json:"name"`
	URL         string `json:"url"`
	ContentType string `json:"contentType,omitempty"`
}

// CompletionID is the completion event's id: derived from the job and the day only, so every run of
// a day (retries, resumed runs, re-runs) announces it with the same id and consumers keep one.
func CompletionID(job string, day time.Time) string {
	return events.DeterministicID(TypeJobCompleted, job, dayString(day))
}

// Subject is the completion event's subject: /jobs/<job>/<day>.
func Subject(job string, day time.Time) string { return "/jobs/" + job + "/" + dayString(day) }

// Event is the completion CloudEvent of day, published at `at`.
func (c *Completed) Event(day, at time.Time) (event.Event, error) {
	e := event.New()
	e.SetID(CompletionID(c.Job, day))
	e.SetSource(EventSource)
	e.SetType(TypeJobCompleted)
	e.SetSubject(Subject(c.Job, day))
	e.SetTime(at.UTC())
	if err := e.SetData(event.ApplicationJSON, c); err != nil {
		return e, fmt.Errorf("completion event: %w", err)
	}
	return e, nil
}
