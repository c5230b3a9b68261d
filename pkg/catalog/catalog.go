// Package catalog owns what partners learn about Contoso's products: the product document model and
// its validation, the public state of a product and the diff against the state last published, the
// CloudEvents that a change produces, the last-published-state store, and the batch service that
// turns a Cosmos DB change-feed batch into published events (and the seeding that records the state
// of an existing catalog without publishing anything).
//
// The rules, in one place:
//   - Only public fields are compared: productId, name, category, price, currency, description,
//     imageUrl, and stock only through "in stock" (stock > 0). Cosmos DB system fields (_rid, _self,
//     _etag, _ts, _lsn, _attachments), ttl and every other property are internal.
//   - Each visible change publishes exactly one of created / updated / deleted; an update also
//     publishes price.changed when price or currency changed and availability.changed when stock
//     crossed zero. A stock change that does not cross zero, or a change of internal fields only,
//     publishes nothing and writes nothing.
//   - created vs updated is decided by the last published state: none (or deleted) means created.
//   - Event ids derive from the product id, its version (_etag) and the event type, so a redelivered
//     change (same _etag) publishes nothing new and a retried publish carries the same ids.
package catalog

import (
	"errors"
	"net/url"
)

// Event types published to the ProductEventsTopic.
const (
	TypeCreated             = "com.contoso.product.created"
	TypeUpdated             = "com.contoso.product.updated"
	TypeDeleted             = "com.contoso.product.deleted"
	TypePriceChanged        = "com.contoso.product.price.changed"
	TypeAvailabilityChanged = "com.contoso.product.availability.changed"
)

// Types lists every product event type, in the order one change publishes them.
func Types() []string {
	return []string{TypeCreated, TypeUpdated, TypeDeleted, TypePriceChanged, TypeAvailabilityChanged}
}

// EventSource is the CloudEvents source of every product event.
const EventSource = "/contoso/catalog"

// SchemaBaseURL is where the JSON Schemas of event data are published (docs/schemas in this
// repository). The dataschema of an event of type T is SchemaBaseURL + T + ".v1.json".
const SchemaBaseURL = "https://contoso.example/schemas/"

// DataSchema returns the dataschema URL of an event type.
func DataSchema(eventType string) string { return SchemaBaseURL + eventType + ".v1.json" }

// Subject is the CloudEvents subject of a product's events: /products/<category>/<productId>, each
// segment path-escaped, so partners filter a category with subjectBeginsWith "/products/<category>/".
func Subject(category, productID string) string {
	return "/products/" + url.PathEscape(category) + "/" + url.PathEscape(productID)
}

// Error kinds. ErrInvalid is poison (dead-letter, never retry); every other error of this package
// wraps a store or publisher failure and is transient (fail the invocation, retry).
var (
	ErrInvalid = errors.New("invalid product document")
)
