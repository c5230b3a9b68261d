package catalog

// Public field names, in the order changedFields lists them.
const (
	FieldName        = "name"
	FieldCategory    = "category"
	FieldPrice       = "price"
	FieldCurrency    = "currency"
	FieldStock       = "stock"
	FieldDescription = "description"
	FieldImageURL    = "imageUrl"
)

// Change is what one document version means for partners.
type Change struct {
	// Types are the event types to publish, in order; empty means nothing visible changed.
	Types []string
	// Product is the state the events describe: the document's for created and updated, the last
	// published one for deleted.
	Product Product
	// Changed lists the public fields that changed (updates only), in field order; a stock change
	// is listed only when it crosses zero.
	Changed []string
	// Previous holds the last published value of each changed field (null for a field that was
	// absent), plus inStock when stock is listed.
	Previous map[string]any
	// Deleted is the published state after the change.
	Deleted bool
}

// Visible reports whether the change publishes anything.
func (c *Change) Visible() bool { return len(c.Types) > 0 }

// Diff compares doc with the last published state (nil when nothing was published for the product)
// and returns what to publish:
//   - a deleted document: deleted when partners last saw the product alive, else nothing;
//   - no state, or a state recorded as deleted: created (a restored product is new to partners);
//   - otherwise updated when a visible field changed, plus price.changed (price or currency) and
//     availability.changed (stock crossed zero); nothing when only stock moved within the same side
//     of zero or only internal fields changed.
func Diff(last *State, doc *Document) Change {
	if doc.Deleted {
		if last == nil || last.Deleted {
			return Change{Deleted: true}
		}
		return Change{Types: []string{TypeDeleted}, Product: last.Product, Deleted: true}
	}
	cur := doc.Product
	if last == nil || last.Deleted {
		return Change{Types: []string{TypeCreated}, Product: cur}
	}
	prev := &last.Product
	c := Change{Product: cur}
	add := func(field string, old any) {
		c.Changed = append(c.Changed, field)
		if c.Previous == nil {
			c.Previous = make(map[string]any, 4)
		}
		c.Previous[field] = old
	}
	if cur.Name != prev.Name {
		add(FieldName, prev.Name)
	}
	if cur.Category != prev.Category {
		add(FieldCategory, prev.Category)
	}
	priceChanged := cur.Price != prev.Price || cur.Currency != prev.Currency
	if cur.Price != prev.Price {
		add(FieldPrice, prev.Price)
	}
	if cur.Currency != prev.Currency {
		add(FieldCurrency, prev.Currency)
	}
	crossed := cur.InStock() != prev.InStock()
	if crossed {
		add(FieldStock, prev.Stock)
		c.Previous["inStock"] = prev.InStock()
	}
	if cur.Description != prev.Description {
		add(FieldDescription, optional(prev.Description))
	}
	if cur.ImageURL != prev.ImageURL {
		add(FieldImageURL, optional(prev.ImageURL))
	}
	if len(c.Changed) == 0 {
		return Change{}
	}
	c.Types = append(c.Types, TypeUpdated)
	if priceChanged {
		c.Types = append(c.Types, TypePriceChanged)
	}
	if crossed {
		c.Types = append(c.Types, TypeAvailabilityChanged)
	}
	return c
}

// optional is the previous value of an optional field: null when it was absent.
func optional(s string) any {
	if s == "" {
		return nil
	}
	return s
}
