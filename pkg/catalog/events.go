package catalog

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/events"
)

// EventData is the data of every product event: the public fields of the product, whether it is in
// stock, and for changes (updated, price.changed, availability.changed) the fields that changed
// with their previously published values. docs/schemas/com.contoso.product.*.v1.json describe it.
type EventData struct {
	// ID repeats the product id under the document's own field name, so a partner finds every public
	// field of the product document under its name (productId is kept for consumers of v1).
	ID string `json:"id"`
	Product
	InStock       bool           `json:"inStock"`
	ChangedFields []string       `json:"changedFields,omitempty"`
	Previous      map[string]any `json:"previous,omitempty"`
}

// EventID is the deterministic id of the event of type eventType for one version of a product:
// the same version always yields the same id, whichever instance or retry builds it.
func EventID(productID string, v Version, eventType string) string {
	return events.DeterministicID("product", productID, v.key(), eventType)
}

// Events builds the CloudEvents of a change of one product version, in publish order. Everything in
// them derives from the change and the version (time is the document's _ts), so building them again
// gives identical events.
func Events(c *Change, v Version) ([]event.Event, error) {
	if !c.Visible() {
		return nil, nil
	}
	out := make([]event.Event, 0, len(c.Types))
	for _, t := range c.Types {
		data := EventData{ID: c.Product.ID, Product: c.Product, InStock: c.Product.InStock()}
		switch t {
		case TypeUpdated:
			data.ChangedFields, data.Previous = c.Changed, c.Previous
		case TypePriceChanged:
			data.ChangedFields, data.Previous = c.only(FieldPrice, FieldCurrency)
		case TypeAvailabilityChanged:
			data.ChangedFields, data.Previous = c.only(FieldStock)
			data.Previous["inStock"] = c.Previous["inStock"]
		}
		e := event.New(event.CloudEventsVersionV1)
		e.SetID(EventID(c.Product.ID, v, t))
		e.SetSource(EventSource)
		e.SetType(t)
		e.SetSubject(Subject(c.Product.Category, c.Product.ID))
		e.SetDataSchema(DataSchema(t))
		if v.TS > 0 {
			e.SetTime(time.Unix(v.TS, 0).UTC())
		}
		b, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("catalog.Events(%s): %w", c.Product.ID, err)
		}
		// Set the encoded JSON directly: SetData would encode it again (and a []byte as base64).
		e.SetDataContentType(event.ApplicationJSON)
		e.DataEncoded, e.DataBase64 = b, false
		out = append(out, e)
	}
	return out, nil
}

// only returns the subset of the changed fields among fields, with their previous values.
func (c *Change) only(fields ...string) ([]string, map[string]any) {
	var changed []string
	prev := make(map[string]any, len(fields)+1)
	for _, f := range c.Changed {
		for _, want := range fields {
			if f == want {
				changed = append(changed, f)
				prev[f] = c.Previous[f]
			}
		}
	}
	return changed, prev
}
