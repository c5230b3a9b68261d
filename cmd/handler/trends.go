package main

import (
	"errors"
	"fmt"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/anomaly"
	"github.com/contoso/eventpipeline/pkg/azure/cosmos"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/settings"
	"github.com/contoso/eventpipeline/pkg/trends"
)

// buildTrends wires Trends, MaterializeTrends, GetTrending and DetectAnomalies (docs/trends.md): the
// trends documents in the Cosmos DB containers trendAggregates (aggregates, partition progress) and
// trendSnapshots (totals, snapshots, materializer state, anomaly series states) when
// CosmosDBConnection is set, embedded collections named after those containers otherwise; anomalies
// are published through the AnalyticsEventsTopic publisher.
func buildTrends(cfg *settings.Config, az *azureAdapters, embeddedDB func() (*embedded.DB, error), d *handlers.Deps) error {
	svc := &trends.Service{}
	job := &anomaly.Job{Minutes: svc}
	if pub := d.Publishers[settings.AnalyticsTopic]; pub != nil {
		job.Publisher = pub
	}
	agg, snap := settings.ContainerTrendAggregates, settings.ContainerTrendSnapshots
	if az.cosmos != nil {
		client := az.cosmos
		db := cfg.CosmosDatabase
		svc.Stores = trends.Stores{
			Aggregates: cosmos.NewCollection[trends.Aggregate](client, db, agg),
			Progress:   cosmos.NewCollection[trends.Progress](client, db, agg),
			Totals:     cosmos.NewCollection[trends.Totals](client, db, snap),
			Snapshots:  cosmos.NewCollection[trends.Snapshot](client, db, snap),
			State:      cosmos.NewCollection[trends.MaterializerState](client, db, snap),
		}
		job.States = cosmos.NewCollection[anomaly.Series](client, db, snap)
	} else {
		// One embedded collection per document type (a collection holds one Go type); in Cosmos DB
		// they share the two containers, told apart by their partition key prefixes.
		db, err := embeddedDB()
		if err != nil {
			return err
		}
		var errs []error
		svc.Stores = trends.Stores{
			Aggregates: openEmbedded[trends.Aggregate](db, agg.Name, &errs),
			Progress:   openEmbedded[trends.Progress](db, agg.Name+".progress", &errs),
			Totals:     openEmbedded[trends.Totals](db, snap.Name+".totals", &errs),
			Snapshots:  openEmbedded[trends.Snapshot](db, snap.Name, &errs),
			State:      openEmbedded[trends.MaterializerState](db, snap.Name+".state", &errs),
		}
		job.States = openEmbedded[anomaly.Series](db, snap.Name+".anomaly", &errs)
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("trends store: %w", err)
		}
	}
	d.Trends, d.Anomalies = svc, job
	return nil
}

// openEmbedded opens the embedded collection name, appending a failure to errs.
func openEmbedded[T any](db *embedded.DB, name string, errs *[]error) *embedded.Collection[T] {
	c, err := embedded.NewCollection[T](db, name)
	if err != nil {
		*errs = append(*errs, err)
	}
	return c
}
