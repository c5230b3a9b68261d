package handlers

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/contoso/eventpipeline/pkg/jobs"
)

// getRecommendations serves GET /api/products/{productId}/recommendations?limit=N (default 10, 1 to
// 20): the products most often viewed in the same session ("source":"viewed-together"), or, for a
// product without such data, the trending products of its category ("source":"trending-fallback",
// "fallback":true). Invalid parameters are a 400 problem; a store failure a 503.
func (a *app) getRecommendations(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return &Problem{Type: "https://contoso.example/problems/method-not-allowed", Title: "Method not allowed",
			Status: http.StatusMethodNotAllowed, Detail: "use GET"}
	}
	id := r.PathValue("productId")
	var fields []FieldError
	if err := jobs.ValidProductID(id); err != nil {
		fields = append(fields, FieldError{Field: "productId", Message: err.Error()})
	}
	limit, perr := limitParam(r, 10, jobs.MaxItems)
	if perr != nil {
		fields = append(fields, perr.Errors...)
	}
	if len(r.URL.Query()["limit"]) > 1 {
		fields = append(fields, FieldError{Field: "limit", Message: "must be given once"})
	}
	if len(fields) > 0 {
		return badRequest("the recommendations request is not valid", fields...)
	}
	if a.Recommendations == nil {
		return errors.New("recommendations: not configured")
	}
	ans, err := a.Recommendations.Get(r.Context(), id, limit)
	if errors.Is(err, jobs.ErrInvalid) {
		return badRequest(err.Error())
	}
	if err != nil {
		return err
	}
	// Recommendations change once a day; the fallback follows trending, which changes by the minute.
	maxAge := 300
	if ans.Fallback {
		maxAge = 60
	}
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge))
	return writeJSON(w, http.StatusOK, ans)
}
