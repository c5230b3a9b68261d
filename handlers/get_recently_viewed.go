package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/contoso/eventpipeline/pkg/recent"
)

type recentItem struct {
	ProductID string `json:"productId"`
	ViewedAt  string `json:"viewedAt"`
}

type recentResponse struct {
	UserID string       `json:"userId"`
	Items  []recentItem `json:"items"`
}

// getRecentlyViewed serves GET /api/users/{userId}/recently-viewed?limit=N (default 10, 1 to 20).
func (a *app) getRecentlyViewed(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return &Problem{Type: "https://contoso.example/problems/method-not-allowed", Title: "Method not allowed",
			Status: http.StatusMethodNotAllowed, Detail: "use GET"}
	}
	user := r.PathValue("userId")
	if err := recent.ValidateViewer(user); err != nil {
		return badRequest("the user id is not valid", FieldError{Field: "userId", Message: err.Error()})
	}
	limit, perr := limitParam(r, 10, recent.MaxItems)
	if perr != nil {
		return perr
	}
	items, err := a.Recent.Get(r.Context(), user, limit)
	if err != nil {
		return err
	}
	out := recentResponse{UserID: user, Items: make([]recentItem, len(items))}
	for i, it := range items {
		out.Items[i] = recentItem{ProductID: it.ProductID, ViewedAt: it.ViewedAt.UTC().Format(time.RFC3339Nano)}
	}
	w.Header().Set("Cache-Control", "private, max-age=0")
	return writeJSON(w, http.StatusOK, out)
}

// limitParam reads ?limit=, an integer from 1 to max (def when absent).
func limitParam(r *http.Request, def, max int) (int, *Problem) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("limit must be an integer from 1 to "+strconv.Itoa(max),
			FieldError{Field: "limit", Message: "got " + strconv.Quote(v)})
	}
	return n, nil
}
