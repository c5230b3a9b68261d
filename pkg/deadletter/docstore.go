package deadletter

import (
	"context"
	"fmt"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// Docs is a Store on a document collection (partition key = function, id = record id). The handler
// uses it on the embedded store as the local default: one log append per record instead of a file
// per record, which on a local disk cost more than the rest of a batch.
type Docs struct {
	C docstore.Collection[Record]
	// Functions lists the partitions List visits when no function is named (a collection cannot
	// list its partitions).
	Functions []string
}

var _ Store = (*Docs)(nil)

// Put implements Store.
func (d *Docs) Put(ctx context.Context, recs ...Record) error {
	for _, r := range recs {
		if r.ID == "" || r.Function == "" {
			return fmt.Errorf("deadletter.Docs.Put: record needs ID and Function")
		}
		if _, err := d.C.Put(ctx, r.Function, r.ID, r, docstore.PutOptions{}); err != nil {
			return fmt.Errorf("deadletter.Docs.Put(%s/%s): %w", r.Function, r.ID, err)
		}
	}
	return nil
}

// List implements Store.
func (d *Docs) List(ctx context.Context, function string, fn func(Record) error) error {
	fns := []string{function}
	if function == "" {
		fns = d.Functions
	}
	for _, f := range fns {
		if err := d.C.List(ctx, f, func(_ string, r Record, _ docstore.ETag) error { return fn(r) }); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements Store.
func (d *Docs) Delete(ctx context.Context, function, id string) error {
	return d.C.Delete(ctx, function, id)
}
