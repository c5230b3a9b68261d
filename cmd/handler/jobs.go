package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/azure/cosmos"
	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/catalog"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/jobs"
	"github.com/contoso/eventpipeline/pkg/settings"
	"github.com/contoso/eventpipeline/pkg/trends"
)

// buildJobs wires CaptureRollup, CaptureFileCreated and GetRecommendations (docs/batch-jobs.md):
//   - Capture files: the CAPTURE_CONTAINER blob container when StorageConnection is set, else
//     LOCAL_DATA_DIR/capture in the same layout;
//   - reports and partial aggregates: the "reports" blob container, else LOCAL_DATA_DIR/reports;
//   - job state and recommendations: the Cosmos DB containers jobState and recommendations when
//     CosmosDBConnection is set, else embedded collections of those names;
//   - the completion event: the AnalyticsEventsTopic publisher; corrupt files: the dead-letter store;
//   - the recommendations fallback: 24-hour trending of the product's category (pkg/trends), the
//     category from the recommendations document or the published product state (pkg/catalog).
//
// It runs after the publishers, the dead-letter store, products and trends are built.
func buildJobs(cfg *settings.Config, az *azureAdapters, embeddedDB func() (*embedded.DB, error), d *handlers.Deps) error {
	r := &jobs.Rollup{Container: cfg.CaptureContainer, DeadLetters: d.DeadLetters, Now: d.Now, Log: d.Log}
	if pub := d.Publishers[settings.AnalyticsTopic]; pub != nil {
		r.Publisher = pub
	}
	if c := az.blob; c != nil {
		r.Source = c.CaptureFiles(cfg.CaptureContainer)
		r.Reports = c.Objects(settings.BlobReports)
	} else {
		r.Source = capture.Dir{Root: filepath.Join(cfg.DataDir, "capture")}
		r.Reports = jobs.Dir{Root: filepath.Join(cfg.DataDir, settings.BlobReports)}
	}
	if az.cosmos != nil {
		client := az.cosmos
		db := cfg.CosmosDatabase
		r.Stores = jobs.Stores{
			Days:            cosmos.NewCollection[jobs.DayState](client, db, settings.ContainerJobState),
			Files:           cosmos.NewCollection[jobs.FileState](client, db, settings.ContainerJobState),
			Recommendations: cosmos.NewCollection[jobs.Recommendation](client, db, settings.ContainerRecommendations),
		}
		// About one recommendation document per product per day: overlap the round trips.
		r.Config.Concurrency = 16
	} else {
		db, err := embeddedDB()
		if err != nil {
			return err
		}
		// One embedded collection per document type; in Cosmos DB days and files share jobState.
		days, err := embedded.NewCollection[jobs.DayState](db, settings.ContainerJobState.Name)
		if err != nil {
			return err
		}
		files, err := embedded.NewCollection[jobs.FileState](db, settings.ContainerJobState.Name+".files")
		if err != nil {
			return err
		}
		recs, err := embedded.NewCollection[jobs.Recommendation](db, settings.ContainerRecommendations.Name)
		if err != nil {
			return err
		}
		r.Stores = jobs.Stores{Days: days, Files: files, Recommendations: recs}
	}
	rec := &jobs.Recommender{Store: r.Stores.Recommendations}
	if d.Trends != nil {
		rec.Trending = trendingFallback{svc: d.Trends, now: d.Now}
	}
	if d.Products != nil && d.Products.State != nil {
		rec.Categories = productCategories{states: d.Products.State}
	}
	d.Rollup, d.Recommendations = r, rec
	return nil
}

// trendingFallback serves the recommendations fallback from the materialized 24-hour trending.
type trendingFallback struct {
	svc *trends.Service
	now func() time.Time
}

func (t trendingFallback) TopInCategory(ctx context.Context, category string, limit int) ([]jobs.Scored, error) {
	res, err := t.svc.Trending(ctx, trends.Query{Window: trends.Window24h, Limit: min(limit, trends.MaxLimit), Category: category, At: t.now().UTC()})
	if errors.Is(err, trends.ErrNotMaterialized) {
		return nil, nil // nothing trending yet: an empty fallback
	}
	if err != nil {
		return nil, err
	}
	out := make([]jobs.Scored, len(res.Top))
	for i, e := range res.Top {
		out[i] = jobs.Scored{ProductID: e.ProductID, Score: float64(e.Views)}
	}
	return out, nil
}

// productCategories reads a product's category from its published state.
type productCategories struct {
	states catalog.StateStore
}

func (p productCategories) CategoryOf(ctx context.Context, productID string) (string, error) {
	st, _, err := p.states.Get(ctx, productID, productID)
	if errors.Is(err, docstore.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return st.Product.Category, nil
}

// rollup is `handler rollup [-day YYYY-MM-DD] [-reprocess]`: complete a UTC day of the Capture rollup
// now (the previous day by default), again if it was completed: the same reports and completion event
// id. -reprocess reads every Capture file of the day again (after a decoder fix, or a re-uploaded
// file) instead of reusing the stored per-file aggregates.
func rollup(ctx context.Context, args []string, cfg *settings.Config, log *slog.Logger, stderr io.Writer) int {
	fs := flag.NewFlagSet("rollup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dayFlag := fs.String("day", "", "UTC day to complete, YYYY-MM-DD (default: yesterday)")
	reprocess := fs.Bool("reprocess", false, "read every Capture file of the day again")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	day := capture.Day(time.Now()).AddDate(0, 0, -1)
	if *dayFlag != "" {
		var err error
		if day, err = jobs.ParseDay(*dayFlag); err != nil {
			fmt.Fprintf(stderr, "handler rollup: %v\n", err)
			return 2
		}
	}
	deps, closeDeps, err := build(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "handler: %v\n", err)
		return 1
	}
	defer closeDeps()
	res, err := deps.RollupDay(ctx, day, *reprocess)
	if err != nil {
		fmt.Fprintf(stderr, "handler rollup: %v\n", err)
		if errors.Is(err, jobs.ErrInvalid) {
			return 2
		}
		return 1
	}
	attrs := []any{"day", res.Day, "status", res.Status, "runId", res.RunID, "files", res.Files, "read", res.Read,
		"corrupt", res.Corrupt, "missing", res.Missing, "eventId", res.EventID, "ms", res.Duration.Milliseconds()}
	for k, v := range res.Counts {
		if k != "files" {
			attrs = append(attrs, k, v)
		}
	}
	for _, o := range res.Outputs {
		attrs = append(attrs, o.Name, o.URL)
	}
	log.Info("rollup done", attrs...)
	return 0
}
