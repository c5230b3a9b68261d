package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/contoso/eventpipeline/pkg/trends"
)

// trendingResponse is GetTrending's answer.
type trendingResponse struct {
	Window string               `json:"window"`
	AsOf   string               `json:"asOf"`
	Top    []trends.Entry       `json:"top"`
	Rising []trends.RisingEntry `json:"rising"`
	// Materialized is false when no snapshot exists for that time yet (nothing counted, or the
	// materializer has not run): the lists are empty, which is what the site should show.
	Materialized bool `json:"materialized"`
}

// getTrending serves GET /api/trending?window=15m|1h|24h&limit=N&category=C&at=RFC3339 from the
// materialized snapshots (one point read normally, at most four). Invalid parameters are a 400
// problem listing each one; no snapshot yet (the materializer has not run for that time) is a 503
// with Retry-After; a store failure is a 503.
func (a *app) getTrending(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return &Problem{Type: "https://contoso.example/problems/method-not-allowed", Title: "Method not allowed",
			Status: http.StatusMethodNotAllowed, Detail: "use GET"}
	}
	if a.Trends == nil {
		return errors.New("trends: the trends service is not configured")
	}
	q, err := trends.ParseQuery(r.URL.Query(), a.Now(), a.Trends.Retention())
	if err != nil {
		var qe trends.QueryError
		if !errors.As(err, &qe) {
			return err
		}
		fields := make([]FieldError, len(qe))
		for i, p := range qe {
			fields[i] = FieldError{Field: p.Param, Message: p.Message}
		}
		return badRequest("the trending query is not valid", fields...)
	}
	res, err := a.Trends.Trending(r.Context(), q)
	materialized := true
	if errors.Is(err, trends.ErrNotMaterialized) {
		// Nothing materialized yet (a new deployment, an empty store): nothing is trending. The
		// caller gets empty lists, not an error it would have to handle.
		materialized, err = false, nil
		res = trends.Result{Window: q.Window, AsOf: trends.Minute(q.At), Top: []trends.Entry{}, Rising: []trends.RisingEntry{}}
	}
	if err != nil {
		return err
	}
	// The answer is the same for every caller and changes once a minute.
	w.Header().Set("Cache-Control", "public, max-age=30")
	return writeJSON(w, http.StatusOK, trendingResponse{Window: string(res.Window), AsOf: res.AsOf.UTC().Format(time.RFC3339),
		Top: res.Top, Rising: res.Rising, Materialized: materialized})
}
