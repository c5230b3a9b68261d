package catalog_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/pkg/catalog"
)

var base = catalog.Product{ID: "p-1", Name: "Claw hammer", Category: "tools", Price: 19.99, Currency: "EUR", Stock: 42,
	Description: "Forged steel.", ImageURL: "https://img.contoso.example/p-1.jpg"}

func change(f func(p *catalog.Product)) catalog.Product {
	p := base
	f(&p)
	return p
}

func TestDiff(t *testing.T) {
	published := &catalog.State{ID: "p-1", ProductID: "p-1", Product: base}
	outOfStock := &catalog.State{ID: "p-1", ProductID: "p-1", Product: change(func(p *catalog.Product) { p.Stock = 0 })}
	deleted := &catalog.State{ID: "p-1", ProductID: "p-1", Product: base, Deleted: true}
	tests := []struct {
		name string
		last *catalog.State
		doc  catalog.Document
		want catalog.Change
	}{
		{
			name: "first sight: created",
			doc:  catalog.Document{Product: base},
			want: catalog.Change{Types: []string{catalog.TypeCreated}, Product: base},
		},
		{
			name: "restored after a delete: created",
			last: deleted,
			doc:  catalog.Document{Product: base},
			want: catalog.Change{Types: []string{catalog.TypeCreated}, Product: base},
		},
		{
			name: "nothing changed (internal fields only)",
			last: published,
			doc:  catalog.Document{Product: base},
			want: catalog.Change{},
		},
		{
			name: "stock moves but stays above zero: nothing",
			last: published,
			doc:  catalog.Document{Product: change(func(p *catalog.Product) { p.Stock = 1 })},
			want: catalog.Change{},
		},
		{
			name: "stock stays at zero: nothing",
			last: outOfStock,
			doc:  catalog.Document{Product: change(func(p *catalog.Product) { p.Stock = 0 })},
			want: catalog.Change{},
		},
		{
			name: "name changed: updated",
			last: published,
			doc:  catalog.Document{Product: change(func(p *catalog.Product) { p.Name = "Hammer" })},
			want: catalog.Change{Types: []string{catalog.TypeUpdated}, Product: change(func(p *catalog.Product) { p.Name = "Hammer" }),
				Changed: []string{"name"}, Previous: map[string]any{"name": "Claw hammer"}},
		},
		{
			name: "price changed: updated and price.changed",
			last: published,
			doc:  catalog.Document{Product: change(func(p *catalog.Product) { p.Price = 17.5 })},
			want: catalog.Change{Types: []string{catalog.TypeUpdated, catalog.TypePriceChanged}, Product: change(func(p *catalog.Product) { p.Price = 17.5 }),
				Changed: []string{"price"}, Previous: map[string]any{"price": 19.99}},
		},
		{
			name: "currency changed alone: updated and price.changed",
			last: published,
			doc:  catalog.Document{Product: change(func(p *catalog.Product) { p.Currency = "CHF" })},
			want: catalog.Change{Types: []string{catalog.TypeUpdated, catalog.TypePriceChanged}, Product: change(func(p *catalog.Product) { p.Currency = "CHF" }),
				Changed: []string{"currency"}, Previous: map[string]any{"currency": "EUR"}},
		},
		{
			name: "sold out: updated and availability.changed",
			last: published,
			doc:  catalog.Document{Product: change(func(p *catalog.Product) { p.Stock = 0 })},
			want: catalog.Change{Types: []string{catalog.TypeUpdated, catalog.TypeAvailabilityChanged}, Product: change(func(p *catalog.Product) { p.Stock = 0 }),
				Changed: []string{"stock"}, Previous: map[string]any{"stock": int64(42), "inStock": true}},
		},
		{
			name: "back in stock: updated and availability.changed",
			last: outOfStock,
			doc:  catalog.Document{Product: change(func(p *catalog.Product) { p.Stock = 5 })},
			want: catalog.Change{Types: []string{catalog.TypeUpdated, catalog.TypeAvailabilityChanged}, Product: change(func(p *catalog.Product) { p.Stock = 5 }),
				Changed: []string{"stock"}, Previous: map[string]any{"stock": int64(0), "inStock": false}},
		},
		{
			name: "price, stock across zero and category at once: all three, fields in order",
			last: published,
			doc: catalog.Document{Product: change(func(p *catalog.Product) {
				p.Price, p.Stock, p.Category, p.ImageURL = 9, 0, "sale", ""
			})},
			want: catalog.Change{Types: []string{catalog.TypeUpdated, catalog.TypePriceChanged, catalog.TypeAvailabilityChanged},
				Product: change(func(p *catalog.Product) { p.Price, p.Stock, p.Category, p.ImageURL = 9, 0, "sale", "" }),
				Changed: []string{"category", "price", "stock", "imageUrl"},
				Previous: map[string]any{"category": "tools", "price": 19.99, "stock": int64(42), "inStock": true,
					"imageUrl": "https://img.contoso.example/p-1.jpg"}},
		},
		{
			name: "description added where there was none: previous is null",
			last: &catalog.State{Product: change(func(p *catalog.Product) { p.Description = "" })},
			doc:  catalog.Document{Product: base},
			want: catalog.Change{Types: []string{catalog.TypeUpdated}, Product: base,
				Changed: []string{"description"}, Previous: map[string]any{"description": nil}},
		},
		{
			name: "soft delete of a published product: deleted with the last published state",
			last: published,
			doc:  catalog.Document{Product: catalog.Product{ID: "p-1"}, Deleted: true},
			want: catalog.Change{Types: []string{catalog.TypeDeleted}, Product: base, Deleted: true},
		},
		{
			name: "soft delete of a product partners never saw: nothing",
			doc:  catalog.Document{Product: catalog.Product{ID: "p-1"}, Deleted: true},
			want: catalog.Change{Deleted: true},
		},
		{
			name: "deleted again (ttl refreshed): nothing",
			last: deleted,
			doc:  catalog.Document{Product: catalog.Product{ID: "p-1"}, Deleted: true},
			want: catalog.Change{Deleted: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := catalog.Diff(tt.last, &tt.doc)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("Diff (-want +got):\n%s", diff)
			}
			// Exactly one of created/updated/deleted per visible change, and it comes first.
			if got.Visible() {
				switch got.Types[0] {
				case catalog.TypeCreated, catalog.TypeUpdated, catalog.TypeDeleted:
				default:
					t.Fatalf("first type %s", got.Types[0])
				}
				for _, ty := range got.Types[1:] {
					if ty == catalog.TypeCreated || ty == catalog.TypeUpdated || ty == catalog.TypeDeleted {
						t.Fatalf("two lifecycle types in %v", got.Types)
					}
				}
			}
		})
	}
}
