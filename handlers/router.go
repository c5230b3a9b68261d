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
	"context"
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
	"github.com/contoso/eventpipeline/pkg/settings"
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
	// Commit makes the writes of an invocation durable before the host gets its answer (the
	// embedded store's group commit; nil when every store is an Azure service, whose writes are
	// durable when they return). Budget holds every invocation's deadlines (from host.json's
	// functionTimeout; zero: none).
	Commit func(ctx context.Context) error
	Budget protocol.Budget
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
	// Every invocation: the same logger, deadlines from functionTimeout, and its writes committed
	// before the answer (pkg/protocol). Triggers read envelopes up to protocol.DefaultMaxBody (the
	// largest batch a binding delivers); timers get small envelopes; an HTTP function's envelope
	// carries its request, bounded by the API's own limit.
	opts := func(extra ...protocol.Option) []protocol.Option {
		o := []protocol.Option{protocol.WithLogger(d.Log), protocol.WithBudget(d.Budget)}
		if d.Commit != nil {
			o = append(o, protocol.WithCommit(d.Commit))
		}
		return append(o, extra...)
	}
	timer := protocol.WithMaxBody(maxTimerEnvelope)
	api := protocol.WithMaxBody(maxAPIEnvelope)
	commit := func(h http.Handler) http.Handler { // the forwarded path: commit before the answer too
		if d.Commit == nil {
			return h
		}
		return protocol.Committing(d.Commit, h)
	}
	r := chi.NewRouter()
	r.Get("/", Health)
	r.Head("/", Health)

	r.Method(http.MethodPost, "/"+FnRecentlyViewed, protocol.Handler(FnRecentlyViewed, a.recentlyViewed,
		opts(protocol.WithOverdue(a.parkOverdueClicks(FnRecentlyViewed, settings.ConsumerGroupRecent)))...))
	r.Method(http.MethodPost, "/"+FnReplayDeadLetters, protocol.Handler(FnReplayDeadLetters, a.replayDeadLetters, opts(timer)...))
	r.Method(http.MethodPost, "/"+FnRelayOutbox, protocol.Handler(FnRelayOutbox, a.relayOutbox, opts(timer)...))
	r.Method(http.MethodPost, "/"+FnProductChanges, protocol.Handler(FnProductChanges, a.productChanges,
		opts(protocol.WithOverdue(a.parkOverdueProducts))...))
	r.Method(http.MethodPost, "/"+FnTrends, protocol.Handler(FnTrends, a.trends,
		opts(protocol.WithOverdue(a.parkOverdueClicks(FnTrends, settings.ConsumerGroupTrends)))...))
	r.Method(http.MethodPost, "/"+FnMaterializeTrends, protocol.Handler(FnMaterializeTrends, a.materializeTrends, opts(timer)...))
	r.Method(http.MethodPost, "/"+FnDetectAnomalies, protocol.Handler(FnDetectAnomalies, a.detectAnomalies, opts(timer)...))
	r.Method(http.MethodPost, "/"+FnCaptureRollup, protocol.Handler(FnCaptureRollup, a.captureRollup, opts(timer)...))
	r.Method(http.MethodPost, "/"+FnCaptureFileCreated, protocol.Handler(FnCaptureFileCreated, a.captureFileCreated, opts(api)...))

	getRecent := a.api(a.getRecentlyViewed)
	r.Method(http.MethodPost, "/"+FnGetRecentlyViewed, protocol.HTTPEnvelope(FnGetRecentlyViewed, "req", "res", getRecent, opts(api)...))
	r.Method(http.MethodGet, "/api/users/{userId}/recently-viewed", commit(getRecent))

	feedbackAPI := a.api(a.partnerFeedback)
	r.Method(http.MethodPost, "/"+FnPartnerFeedback, protocol.HTTPEnvelope(FnPartnerFeedback, "req", "res", feedbackAPI, opts(api)...))
	r.Method(http.MethodPost, "/api/feedback", commit(feedbackAPI))

	getTrending := a.api(a.getTrending)
	r.Method(http.MethodPost, "/"+FnGetTrending, protocol.HTTPEnvelope(FnGetTrending, "req", "res", getTrending, opts(api)...))
	r.Method(http.MethodGet, "/api/trending", commit(getTrending))

	getRecommendations := a.api(a.getRecommendations)
	r.Method(http.MethodPost, "/"+FnGetRecommendations, protocol.HTTPEnvelope(FnGetRecommendations, "req", "res", getRecommendations, opts(api)...))
	r.Method(http.MethodGet, "/api/products/{productId}/recommendations", commit(getRecommendations))

	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		protocol.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no function or route " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		protocol.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " not allowed on " + r.URL.Path})
	})
	return r
}

// Envelope limits beside protocol.DefaultMaxBody (Event Hubs and Cosmos DB triggers): a timer's
// envelope is a few hundred bytes; an HTTP function's holds its request (MaxFeedbackBody at most,
// which JSON escaping can double) and the host's headers and metadata.
const (
	maxTimerEnvelope = 1 << 20
	maxAPIEnvelope   = 2*MaxFeedbackBody + 1<<20
)

// Health answers the host's readiness probe and pings at once.
func Health(w http.ResponseWriter, r *http.Request) {
	protocol.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
