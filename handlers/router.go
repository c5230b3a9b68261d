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

	"github.com/contoso/eventpipeline/pkg/anomaly"
	"github.com/contoso/eventpipeline/pkg/catalog"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/feedback"
	"github.com/contoso/eventpipeline/pkg/jobs"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/recent"
	"github.com/contoso/eventpipeline/pkg/trends"
)

// Deps are the services the functions use. main builds them from settings.
type Deps struct {
	Log         *slog.Logger
	Recent      *recent.Service
	Products    *catalog.Service // ProductChanges: diff, events, published state
	DeadLetters deadletter.Store
	Now         func() time.Time
	// Publishers by destination (settings.AnalyticsTopic, settings.ProductTopic, settings.HubFeedback):
	// every function publishes through one, and RelayOutbox relays each one's outbox.
	Publishers map[string]*publish.Publisher
	// PartnerFeedback: the service (nil: the function answers 503), who the partners are, and the
	// per-partner rate limit (nil: none).
	Feedback      *feedback.Service
	Partners      feedback.Partners
	FeedbackLimit *feedback.Limiter
	// Trends counts views (Trends), materializes (MaterializeTrends) and serves (GetTrending)
	// trending; Anomalies is the DetectAnomalies job (it publishes to AnalyticsEventsTopic).
	Trends    *trends.Service
	Anomalies *anomaly.Job
	// Rollup is the daily clickstream rollup from Event Hubs Capture (CaptureRollup, CaptureFileCreated,
	// `handler rollup`); Recommendations serves GetRecommendations (nil: the functions fail / answer 503).
	Rollup          *jobs.Rollup
	Recommendations *jobs.Recommender
}

// Function names: each is a folder under functions/ and the route the host calls.
const (
	FnRecentlyViewed    = "RecentlyViewed"
	FnGetRecentlyViewed = "GetRecentlyViewed"
	FnReplayDeadLetters = "ReplayDeadLetters"
	FnRelayOutbox       = "RelayOutbox"
	FnProductChanges    = "ProductChanges"
	FnPartnerFeedback   = "PartnerFeedback"
	FnTrends            = "Trends"
	FnGetTrending       = "GetTrending"
	FnMaterializeTrends = "MaterializeTrends"
	FnDetectAnomalies   = "DetectAnomalies"
	// Batch jobs on Event Hubs Capture (docs/batch-jobs.md).
	FnCaptureRollup      = "CaptureRollup"
	FnCaptureFileCreated = "CaptureFileCreated"
	FnGetRecommendations = "GetRecommendations"
)

// Functions lists every function the router serves (a test keeps it equal to functions/*).
func Functions() []string {
	return []string{FnRecentlyViewed, FnGetRecentlyViewed, FnReplayDeadLetters, FnProductChanges, FnRelayOutbox, FnPartnerFeedback,
		FnTrends, FnGetTrending, FnMaterializeTrends, FnDetectAnomalies,
		FnCaptureRollup, FnCaptureFileCreated, FnGetRecommendations}
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
	r.Method(http.MethodPost, "/"+FnRelayOutbox, protocol.Handler(FnRelayOutbox, a.relayOutbox, opt))
	r.Method(http.MethodPost, "/"+FnProductChanges, protocol.Handler(FnProductChanges, a.productChanges, opt))
	r.Method(http.MethodPost, "/"+FnTrends, protocol.Handler(FnTrends, a.trends, opt))
	r.Method(http.MethodPost, "/"+FnMaterializeTrends, protocol.Handler(FnMaterializeTrends, a.materializeTrends, opt))
	r.Method(http.MethodPost, "/"+FnDetectAnomalies, protocol.Handler(FnDetectAnomalies, a.detectAnomalies, opt))
	r.Method(http.MethodPost, "/"+FnCaptureRollup, protocol.Handler(FnCaptureRollup, a.captureRollup, opt))
	r.Method(http.MethodPost, "/"+FnCaptureFileCreated, protocol.Handler(FnCaptureFileCreated, a.captureFileCreated, opt))

	getRecent := a.api(a.getRecentlyViewed)
	r.Method(http.MethodPost, "/"+FnGetRecentlyViewed, protocol.HTTPEnvelope(FnGetRecentlyViewed, "req", "res", getRecent, opt))
	r.Method(http.MethodGet, "/api/users/{userId}/recently-viewed", getRecent)

	feedbackAPI := a.api(a.partnerFeedback)
	r.Method(http.MethodPost, "/"+FnPartnerFeedback, protocol.HTTPEnvelope(FnPartnerFeedback, "req", "res", feedbackAPI, opt))
	r.Method(http.MethodPost, "/api/feedback", feedbackAPI)

	getTrending := a.api(a.getTrending)
	r.Method(http.MethodPost, "/"+FnGetTrending, protocol.HTTPEnvelope(FnGetTrending, "req", "res", getTrending, opt))
	r.Method(http.MethodGet, "/api/trending", getTrending)

	getRecommendations := a.api(a.getRecommendations)
	r.Method(http.MethodPost, "/"+FnGetRecommendations, protocol.HTTPEnvelope(FnGetRecommendations, "req", "res", getRecommendations, opt))
	r.Method(http.MethodGet, "/api/products/{productId}/recommendations", getRecommendations)

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
