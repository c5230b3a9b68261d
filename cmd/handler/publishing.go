package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/contoso/eventpipeline/pkg/azure/cosmos"
	"github.com/contoso/eventpipeline/pkg/azure/eventgrid"
	"github.com/contoso/eventpipeline/pkg/azure/eventhubs"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/publish"
	"github.com/contoso/eventpipeline/pkg/publish/webhook"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// buildPublishers builds one publish.Publisher per destination, all parking in one outbox:
//   - AnalyticsEventsTopic, ProductEventsTopic: Event Grid when <NAME>__topicEndpointUri is set, else
//     the JSON-lines twin events/<NAME>.jsonl under LOCAL_DATA_DIR (ProductEventsTopic's twin also
//     delivers to LOCAL_PARTNER_WEBHOOKS);
//   - feedback: the Event Hubs hub when EventHubsConnection is set, else events/feedback.jsonl;
//   - the outbox: Cosmos DB container "outbox" when CosmosDBConnection is set, else embedded.
//
// What it opens is appended to closers.
func buildPublishers(cfg *settings.Config, az *azureAdapters, embeddedDB func() (*embedded.DB, error),
	log *slog.Logger, closers *[]func() error) (map[string]*publish.Publisher, error) {
	docs, err := outboxDocs(cfg, az, embeddedDB)
	if err != nil {
		return nil, err
	}
	outbox := publish.NewOutbox(docs)

	senders := map[string]publish.Sender{}
	modes := []any{}
	for _, name := range []string{settings.AnalyticsTopic, settings.ProductTopic} {
		if t := cfg.Topics[name]; t != nil {
			s, err := eventgrid.NewSender(t, nil)
			if err != nil {
				return nil, err
			}
			senders[name] = s
			modes = append(modes, name, "eventgrid "+t.Endpoint)
			continue
		}
		var mirrors []publish.Sender
		if name == settings.ProductTopic {
			// Partners subscribe to product events; LOCAL_PARTNER_WEBHOOKS plays their subscriptions.
			for _, u := range cfg.PartnerWebhooks {
				w, err := webhook.New(u, webhook.Options{})
				if err != nil {
					return nil, fmt.Errorf("LOCAL_PARTNER_WEBHOOKS: %w", err)
				}
				mirrors = append(mirrors, w)
			}
		}
		j, err := publish.NewJSONL(cfg.DataDir, name, publish.JSONLOptions{Mirrors: mirrors, Log: log})
		if err != nil {
			return nil, err
		}
		*closers = append(*closers, j.Close)
		senders[name] = j
		modes = append(modes, name, fmt.Sprintf("embedded %s (+%d webhooks)", j.Path(), len(mirrors)))
	}

	if cfg.EventHubs != nil {
		s, err := eventhubs.NewSender(cfg.EventHubs, settings.HubFeedback, eventhubs.Options{})
		if err != nil {
			return nil, err
		}
		*closers = append(*closers, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return s.Close(ctx)
		})
		senders[settings.HubFeedback] = s
		modes = append(modes, settings.HubFeedback, "eventhubs")
	} else {
		j, err := publish.NewJSONL(cfg.DataDir, settings.HubFeedback, publish.JSONLOptions{Log: log})
		if err != nil {
			return nil, err
		}
		*closers = append(*closers, j.Close)
		senders[settings.HubFeedback] = j
		modes = append(modes, settings.HubFeedback, "embedded "+j.Path())
	}

	pubs := make(map[string]*publish.Publisher, len(senders))
	for name, s := range senders {
		pubs[name] = publish.NewPublisher(name, s, outbox, log)
	}
	log.Info("publishers", modes...)
	return pubs, nil
}

// outboxDocs is the outbox collection: Cosmos DB container "outbox" (partition key /topic) when
// Cosmos DB is configured, the embedded store otherwise.
func outboxDocs(cfg *settings.Config, az *azureAdapters, embeddedDB func() (*embedded.DB, error)) (docstore.Collection[publish.ParkedEvent], error) {
	if az.cosmos != nil {
		c := az.cosmos
		return cosmos.NewCollection[publish.ParkedEvent](c, cfg.CosmosDatabase, settings.ContainerOutbox), nil
	}
	db, err := embeddedDB()
	if err != nil {
		return nil, err
	}
	docs, err := embedded.NewCollection[publish.ParkedEvent](db, settings.ContainerOutbox.Name)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return docs, nil
}
