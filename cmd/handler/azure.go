package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/contoso/eventpipeline/pkg/azure/blob"
	"github.com/contoso/eventpipeline/pkg/azure/cosmos"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/recent"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// azureAdapters holds the Azure clients the configuration asks for; a nil field means the service
// runs on its embedded default. Creating a client does no network I/O, so an unreachable service
// does not stop start-up: only the invocations that need it fail (and are retried or parked).
type azureAdapters struct {
	cosmos   *cosmos.Client
	blob     *blob.Client
	database string
}

func newAzure(ctx context.Context, cfg *settings.Config, log *slog.Logger) (*azureAdapters, error) {
	a := &azureAdapters{database: cfg.CosmosDatabase}
	if cfg.Cosmos != nil {
		c, err := cosmos.NewClient(cfg.Cosmos, cosmos.ClientOptions{PreferredRegions: cfg.CosmosPreferredRegions})
		if err != nil {
			return nil, fmt.Errorf("setting %s: %w", settings.CosmosConnection, err)
		}
		a.cosmos = c
		if cfg.CosmosCreateContainers {
			// Local use only (COSMOS_CREATE_CONTAINERS): in Azure the containers come from infra/.
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := c.EnsureContainers(ctx, cfg.CosmosDatabase, settings.Containers())
			cancel()
			if err != nil {
				log.Warn("could not create Cosmos DB containers; invocations that need them will fail until they exist", "error", err.Error())
			}
		}
	}
	if cfg.Storage != nil {
		c, err := blob.NewClient(cfg.Storage)
		if err != nil {
			return nil, fmt.Errorf("setting %s: %w", settings.StorageConnection, err)
		}
		a.blob = c
		if strings.Contains(cfg.Storage.ConnectionString, "devstoreaccount1") {
			// Azurite starts empty; in Azure the containers come from infra/.
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			for _, name := range []string{settings.BlobDeadLetter, settings.BlobReports, cfg.CaptureContainer} {
				if err := c.EnsureContainer(ctx, name); err != nil {
					log.Warn("could not create blob container in Azurite", "container", name, "error", err.Error())
					break
				}
			}
			cancel()
		}
	}
	return a, nil
}

func (a *azureAdapters) recentStore() recent.Store {
	return cosmos.NewCollection[recent.List](a.cosmos, a.database, settings.ContainerRecentlyViewed)
}

func (a *azureAdapters) deadLetters() deadletter.Store { return a.blob.DeadLetters() }

// close releases the clients.
func (a *azureAdapters) close() error {
	if c := a.cosmos; c != nil {
		c.Close()
	}
	return nil
}
