package deadletter

import (
	"context"
	"fmt"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
)

// Docs is a Store on a document collection (partition key = function, id = record id). On the
// embedded store (Open) it is the local default and the tests' store: one log append per record
// (a file per record cost more on a local disk than the rest of a batch).
type Docs struct {
	C docstore.Collection[Record]
	// Functions lists the partitions List visits when no function is named (a collection cannot
	// list its partitions).
	Functions []string
}

var _ Store = (*Docs)(nil)

// Collection is the name of the embedded dead-letter collection (LOCAL_DATA_DIR/docs/deadletter.jsonl).
const Collection = "deadletter"

// Open returns the embedded dead-letter store of db. functions are the partitions List visits when
// no function is named.
func Open(db *embedded.DB, functions []string) (*Docs, error) {
	c, err := embedded.NewCollection[Record](db, Collection)
	if err != nil {
		return nil, fmt.Errorf("deadletter.Open: %w", err)
	}
	return &Docs{C: c, Functions: functions}, nil
}

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
