package handlers

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
)

// Problem is an RFC 9457 problem detail, the body of every 4xx and 5xx answer of the HTTP API.
type Problem struct {
	Type       string       `json:"type"`
	Title      string       `json:"title"`
	Status     int          `json:"status"`
	Detail     string       `json:"detail,omitempty"`
	Instance   string       `json:"instance,omitempty"`
	Errors     []FieldError `json:"errors,omitempty"`
	RetryAfter int          `json:"-"`
}

// FieldError is one invalid field or parameter.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// badRequest is a 400 for invalid parameters.
func badRequest(detail string, errs ...FieldError) *Problem {
	return &Problem{Type: "https://contoso.example/problems/invalid-request", Title: "Invalid request",
		Status: http.StatusBadRequest, Detail: detail, Errors: errs}
}

// apiFunc is an HTTP function body: it writes a success itself or returns an error that api maps to
// a problem response.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// api is the one place that maps errors to HTTP statuses: a *Problem is answered as is, anything
// else is a 503 (a dependency is down; the caller may retry) without internal details.
func (a *app) api(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := f(w, r)
		if err == nil {
			return
		}
		var p *Problem
		if !errors.As(err, &p) {
			a.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
			p = &Problem{Type: "https://contoso.example/problems/unavailable", Title: "Service unavailable",
				Status: http.StatusServiceUnavailable, Detail: "a backing service is unavailable; retry later", RetryAfter: 5}
		} else {
			a.Log.LogAttrs(r.Context(), slog.LevelInfo, "request rejected", slog.String("path", r.URL.Path), slog.Int("status", p.Status), slog.String("detail", p.Detail))
		}
		writeProblem(w, r, p)
	})
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}
