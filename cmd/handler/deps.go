package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/recent"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// build creates the adapters the configuration asks for: Azure ones where a connection is set,
// embedded defaults under LOCAL_DATA_DIR otherwise. Only main sees concrete types.
func build(ctx context.Context, cfg *settings.Config, log *slog.Logger) (*handlers.Deps, func(), error) {
	var closers []func() error
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				log.Error("close", "error", err.Error())
			}
		}
	}
	d := &handlers.Deps{Log: log, Now: time.Now}

	var db *embedded.DB
	embeddedDB := func() (*embedded.DB, error) {
		if db != nil {
			return db, nil
		}
		var err error
		if db, err = embedded.Open(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("LOCAL_DATA_DIR %s: %w", cfg.DataDir, err)
		}
		closers = append(closers, db.Close)
		return db, nil
	}

	az, err := newAzure(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, az.close)
	// Publishing: one Publisher per destination, all parking in one outbox (publishing.go).
	if d.Publishers, err = buildPublishers(cfg, az, embeddedDB, log, &closers); err != nil {
		closeAll()
		return nil, nil, err
	}
	recentSvc := &recent.Service{TTL: cfg.RecentlyViewedTTL, Concurrency: 1, MaxAttempts: 5}
	if az.cosmos != nil {
		recentSvc.Store = az.recentStore()
		recentSvc.Concurrency = 16
	} else {
		db, err := embeddedDB()
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if recentSvc.Store, err = embedded.NewCollection[recent.List](db, settings.ContainerRecentlyViewed.Name); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	d.Recent = recentSvc

	if az.blob != nil {
		d.DeadLetters = az.deadLetters()
	} else {
		db, err := embeddedDB()
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if d.DeadLetters, err = deadletter.Open(db, handlers.Functions()); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	// Partner feedback (PartnerFeedback); after the publishers, whose feedback twin it reuses locally.
	if err := buildFeedback(cfg, log, d, az, embeddedDB, &closers); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("partner feedback: %w", err)
	}
	// Product changes (ProductChanges): published state + the ProductEventsTopic publisher (products.go).
	if pub := d.Publishers[settings.ProductTopic]; pub != nil {
		if d.Products, err = buildProducts(cfg, az, embeddedDB, pub); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("product changes: %w", err)
		}
	}
	// Trends and anomalies (Trends, MaterializeTrends, GetTrending, DetectAnomalies; trends.go).
	if err := buildTrends(cfg, az, embeddedDB, d); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("trends: %w", err)
	}
	// Batch jobs on Capture (CaptureRollup, CaptureFileCreated, GetRecommendations; jobs.go).
	if err := buildJobs(cfg, az, embeddedDB, d); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("batch jobs: %w", err)
	}
	if d.Recent.Store == nil || d.DeadLetters == nil {
		closeAll()
		return nil, nil, errors.New("internal: a store was not built")
	}
	if db != nil {
		// Embedded stores are durable when committed: every invocation commits before it answers.
		d.Commit = func(context.Context) error { return db.Commit() }
	}
	return d, closeAll, nil
}
