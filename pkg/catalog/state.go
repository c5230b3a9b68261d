package catalog

import (
	"time"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// State is the last published public state of one product: the document of the publishedState
// container (partition key /productId; id and partition key are both the product id, so every read
// and write is a point operation). It is written only after the events describing it were published
// (or parked in the outbox), with the ETag read, so it never runs ahead of what partners were sent.
type State struct {
	ID        string  `json:"id"`
	ProductID string  `json:"productId"`
	Product   Product `json:"product"`
	// Deleted: the last event partners got for the product was com.contoso.product.deleted.
	Deleted bool `json:"deleted,omitempty"`
	// Version is the document version the state was taken from.
	Version Version `json:"version"`
	// Seeded: recorded by the seeding job, not published (partners never got an event for it).
	Seeded    bool      `json:"seeded,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// StateStore is what the service needs of storage: the docstore collection of states (Cosmos DB
// container publishedState in Azure, the embedded store locally).
type StateStore = docstore.Collection[State]

func newState(p Product, deleted bool, v Version, seeded bool, now time.Time) *State {
	return &State{ID: p.ID, ProductID: p.ID, Product: p, Deleted: deleted, Version: v, Seeded: seeded, UpdatedAt: now.UTC()}
}
