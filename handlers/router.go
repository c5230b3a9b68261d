// Package handlers is the transport edge of the custom handler: the chi router the Functions host
// calls, one file per function, envelope decoding and status mapping. Business rules live in pkg/.
//
// Routes:
//   - GET /                      readiness and health (the host polls it)
//   - POST /<FunctionName>       every function, as the host invokes it (JSON envelope)
//   - <METHOD> /api/<route>      HTTP functions, when the host forwards raw requests
//     (customHandler.enableForwardingHttpRequest); the same http.Handler serves both paths.
package handlers

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/recent"
)

// Deps are the services the functions use. main builds them from settings.
type Deps struct {
	Log         *slog.Logger
	Recent      *recent.Service
	DeadLetters deadletter.Store
	Now         func() time.Time
}

// Function names: each is a folder under functions/ and the route the host calls.
const (
	FnRecentlyViewed    = "RecentlyViewed"
	FnGetRecentlyViewed = "GetRecentlyViewed"
	FnReplayDeadLetters = "ReplayDeadLetters"
)

// Functions lists every function the router serves (a test keeps it equal to functions/*).
func Functions() []string {
	return []string{FnRecentlyViewed, FnGetRecentlyViewed, FnReplayDeadLetters}
}

// app holds the dependencies of every function handler.
type app struct {
	Deps
}

// New returns the router.
func New(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	a := &app{Deps: d}
	opt := protocol.WithLogger(d.Log)
	r := chi.NewRouter()
	r.Get("/", Health)
	r.Head("/", Health)

	r.Method(http.MethodPost, "/"+FnRecentlyViewed, protocol.Handler(FnRecentlyViewed, a.recentlyViewed, opt))
	r.Method(http.MethodPost, "/"+FnReplayDeadLetters, protocol.Handler(FnReplayDeadLetters, a.replayDeadLetters, opt))

	getRecent := a.api(a.getRecentlyViewed)
	r.Method(http.MethodPost, "/"+FnGetRecentlyViewed, protocol.HTTPEnvelope(FnGetRecentlyViewed, "req", "res", getRecent, opt))
	r.Method(http.MethodGet, "/api/users/{userId}/recently-viewed", getRecent)

	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		protocol.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no function or route " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		protocol.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " not allowed on " + r.URL.Path})
	})
	return r
}

// Health answers the host's readiness probe and pings at once.
func Health(w http.ResponseWriter, r *http.Request) {
	protocol.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
