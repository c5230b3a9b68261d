package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/contoso/eventpipeline/pkg/catalog"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/delivery"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// productChangesBinding is the cosmosDBTrigger's name in functions/ProductChanges/function.json.
const productChangesBinding = "documents"

func productSource(invocationID string) catalog.Source {
	return catalog.Source{Function: FnProductChanges, Name: "cosmos/" + settings.ContainerProducts.Name, InvocationID: invocationID}
}

// productChanges handles a change-feed batch of the products container (cosmosDBTrigger, extension
// v4) and publishes the product events to ProductEventsTopic (see pkg/catalog for the rules).
//
// Outcomes (see pkg/delivery):
//   - a document that is not a valid product is dead-lettered as poison with every reason, and the
//     rest of the batch is processed; an envelope that cannot be decoded at all is dead-lettered whole;
//   - a state-store or publish failure fails the invocation (500), so the retry policy runs the
//     batch again: nothing has been recorded, and the events are rebuilt with the same ids;
//   - on the last retry the publisher parks undelivered events in the outbox (RelayOutbox re-sends
//     them) and the states are recorded; if even that fails (state store or outbox down), the
//     batch's documents are parked in the dead-letter store for ReplayDeadLetters, and the
//     invocation succeeds, because the Cosmos DB trigger moves its lease on either way;
//   - a dead-letter store failure fails the invocation.
func (a *app) productChanges(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
	if a.Products == nil {
		return nil, errors.New("ProductChanges: product publishing is not configured (Deps.Products)")
	}
	retry, err := inv.Request.Retry()
	if err != nil {
		return nil, err
	}
	src := productSource(inv.ID)
	raws, err := protocol.DecodeCosmosDocuments(inv.Request, productChangesBinding)
	if err != nil {
		raw := inv.Request.Data[productChangesBinding]
		doc := catalog.Document{Raw: json.RawMessage(raw)}
		rec := catalog.Record(src, &doc, deadletter.KindPoison, "undecodable batch: "+err.Error(), a.Now())
		if perr := a.DeadLetters.Put(ctx, rec); perr != nil {
			return nil, fmt.Errorf("dead-letter undecodable batch: %w", perr)
		}
		inv.Log.Error("undecodable batch dead-lettered", "error", err.Error(), "record", rec.ID)
		return nil, nil
	}
	if len(raws) == 0 {
		return nil, nil
	}
	dec := catalog.DecodeBatch(src, raws, a.Now())
	if len(dec.Poison) > 0 {
		if err := a.DeadLetters.Put(ctx, dec.Poison...); err != nil {
			return nil, fmt.Errorf("dead-letter %d invalid product documents: %w", len(dec.Poison), err)
		}
		for _, p := range dec.Poison {
			inv.Log.Warn("invalid product document dead-lettered", "productId", p.Partition, "reason", p.Reason, "record", p.ID)
		}
	}
	last := retry.LastAttempt()
	st, err := a.Products.Apply(ctx, dec.Docs, last)
	parked, err := delivery.Settle(ctx, err, last, func(ctx context.Context, reason string) error {
		return a.DeadLetters.Put(ctx, catalog.ParkRecords(src, dec.Docs, reason, a.Now())...)
	})
	if err != nil {
		return nil, err
	}
	inv.Log.Info("product changes applied", "documents", len(raws), "products", st.Products, "events", st.Events,
		"requests", st.Requests, "unchanged", st.Unchanged, "stale", st.Stale, "writes", st.Writes,
		"conflicts", st.Conflicts, "deadLettered", len(dec.Poison), "parked", parked)
	return nil, nil
}

// parkOverdueProducts is ProductChanges' overdue hook (protocol.WithOverdue): on the last attempt, the
// documents of an invocation that did not finish in time are parked in the dead-letter store, because
// the Cosmos DB trigger moves its lease on after the retries.
func (a *app) parkOverdueProducts(ctx context.Context, inv *protocol.Invocation) (*protocol.Response, error) {
	src := productSource(inv.ID)
	raws, err := protocol.DecodeCosmosDocuments(inv.Request, productChangesBinding)
	if err != nil {
		return a.productChanges(ctx, inv) // undecodable: dead-lettered whole, at once
	}
	dec := catalog.DecodeBatch(src, raws, a.Now())
	recs := append(dec.Poison, catalog.ParkRecords(src, dec.Docs, "the invocation ran past its deadline", a.Now())...)
	if err := a.DeadLetters.Put(ctx, recs...); err != nil {
		return nil, err
	}
	inv.Log.Warn("overdue product changes parked", "documents", len(raws))
	return nil, nil
}

// replayProductChange re-processes one dead-lettered product document: a parked one (its batch could
// not be finished on the last retry) or, on request, a poison one after a fix. It runs as a first
// attempt: a failure keeps the record for the next replay.
func (a *app) replayProductChange(ctx context.Context, rec deadletter.Record) error {
	if a.Products == nil {
		return errors.New("replay ProductChanges: product publishing is not configured")
	}
	body, err := rec.RawBody()
	if err != nil {
		return errors.Join(deadletter.ErrStillPoison, err)
	}
	doc, err := catalog.DecodeChange(body)
	if err != nil {
		return errors.Join(deadletter.ErrStillPoison, err)
	}
	_, err = a.Products.Apply(ctx, []catalog.Document{doc}, false)
	return err
}
