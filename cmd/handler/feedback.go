package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/azure/cosmos"
	"github.com/contoso/eventpipeline/pkg/azure/eventhubs"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/feedback"
	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// buildFeedback wires the partner feedback API (function PartnerFeedback): the sender to the event
// hub "feedback" (Event Hubs when EventHubsConnection is set, else LOCAL_DATA_DIR/events/feedback.jsonl),
// the idempotency store (Cosmos DB container "idempotency", else the embedded collection of that
// name), the partners' Entra principals and the per-partner rate limit.
func buildFeedback(cfg *settings.Config, log *slog.Logger, d *handlers.Deps, az *azureAdapters,
	embeddedDB func() (*embedded.DB, error), closers *[]func() error) error {
	svc := &feedback.Service{Log: log, Now: d.Now}
	sender := "embedded " + settings.HubFeedback

	switch {
	case cfg.EventHubs != nil:
		// Its own producer, with retries short enough for a partner waiting on the answer (the
		// SendTimeout of the service bounds the whole publish).
		s, err := eventhubs.NewSender(cfg.EventHubs, settings.HubFeedback, eventhubs.Options{Retry: eventhubs.RequestRetry})
		if err != nil {
			return err
		}
		*closers = append(*closers, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return s.Close(ctx)
		})
		svc.Sender = s
		sender = "eventhubs " + settings.HubFeedback
	case d.Publishers[settings.HubFeedback] != nil:
		// The embedded twin already opened for the hub's publisher: one writer per file.
		svc.Sender = d.Publishers[settings.HubFeedback].Sender()
	default:
		j, err := publish.NewJSONL(cfg.DataDir, settings.HubFeedback, publish.JSONLOptions{Log: log})
		if err != nil {
			return err
		}
		*closers = append(*closers, j.Close)
		svc.Sender = j
	}

	store := "embedded " + settings.ContainerIdempotency.Name
	if az.cosmos != nil {
		client := az.cosmos
		svc.Keys = cosmos.NewCollection[feedback.Record](client, cfg.CosmosDatabase, settings.ContainerIdempotency)
		store = "cosmos " + settings.ContainerIdempotency.Name
	} else {
		db, err := embeddedDB()
		if err != nil {
			return err
		}
		c, err := embedded.NewCollection[feedback.Record](db, settings.ContainerIdempotency.Name)
		if err != nil {
			return err
		}
		svc.Keys = c
	}

	d.Feedback = svc
	d.Partners = feedback.Partners{Principals: cfg.PartnerPrincipals}
	d.FeedbackLimit = feedback.NewLimiter(cfg.FeedbackRatePerMinute)
	log.Info("partner feedback", "hub", sender, "idempotency", store,
		"partnerPrincipals", len(cfg.PartnerPrincipals), "ratePerMinute", cfg.FeedbackRatePerMinute)
	return nil
}
