package main

import (
	"context"
	"log/slog"

	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/recent"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// azureAdapters holds the Azure clients the configuration asks for (nil when a service runs on its
// embedded default).
type azureAdapters struct {
	cosmos any
	blob   any
}

func newAzure(ctx context.Context, cfg *settings.Config, log *slog.Logger) (*azureAdapters, error) {
	return &azureAdapters{}, nil
}

func (a *azureAdapters) recentStore() recent.Store      { return nil }
func (a *azureAdapters) deadLetters() deadletter.Store { return nil }
