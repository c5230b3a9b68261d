package handlers

import (
	"context"
	"errors"

	"github.com/contoso/eventpipeline/pkg/protocol"
)

// detectAnomalies (timerTrigger, every minute at second 20, after MaterializeTrends) judges every
// closed minute since its last run, site-wide and per category, and publishes one
// com.contoso.analytics.anomaly.detected CloudEvent per new anomaly episode to AnalyticsEventsTopic
// (pkg/anomaly).
//
// Outcomes: an event not delivered fails the invocation before the last retry (nothing is saved, the
// retry judges the same minutes and publishes the same ids); on the last retry the publisher parks it
// in the outbox for RelayOutbox and the run succeeds. A store failure fails the invocation; the next
// tick resumes from the saved states, so no minute is skipped.
func (a *app) detectAnomalies(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
	if _, err := protocol.DecodeTimer(inv.Request, "timer"); err != nil {
		return nil, err
	}
	if a.Anomalies == nil {
		return nil, errors.New("anomalies: the detector is not configured")
	}
	retry, err := inv.Request.Retry()
	if err != nil {
		return nil, err
	}
	st, err := a.Anomalies.Run(ctx, retry.LastAttempt())
	inv.Log.Info("anomalies detected", "judged", st.Judged, "skipped", st.Skipped, "through", st.Through,
		"episodes", st.Findings, "published", st.Published, "stale", st.Stale, "reads", st.Reads, "writes", st.Writes)
	return nil, err
}
