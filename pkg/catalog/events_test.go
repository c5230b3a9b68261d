package catalog_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/contoso/eventpipeline/pkg/catalog"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("%s differs (run with -update if the change is intended)\n got: %s\nwant: %s", path, got, want)
	}
}

func marshalEvents(t *testing.T, evs []event.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, e := range evs {
		if err := e.Validate(); err != nil {
			t.Fatalf("event %s is not a valid CloudEvent: %v", e.ID(), err)
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		buf.Write(pretty.Bytes())
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func TestEventsGolden(t *testing.T) {
	v := catalog.Version{ETag: `"e-2"`, LSN: 12, TS: 1764072000}
	last := &catalog.State{Product: base}
	tests := []struct {
		file string
		last *catalog.State
		doc  catalog.Document
	}{
		{"created.golden.json", nil, catalog.Document{Product: base, Version: v}},
		{"updated-price-stock.golden.json", last, catalog.Document{Version: v, Product: change(func(p *catalog.Product) {
			p.Price, p.Stock, p.Name = 17.5, 0, "Claw hammer 16 oz"
		})}},
		{"deleted.golden.json", last, catalog.Document{Version: v, Deleted: true, Product: catalog.Product{ID: "p-1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := catalog.Diff(tt.last, &tt.doc)
			evs, err := catalog.Events(&c, tt.doc.Version)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.file, marshalEvents(t, evs))
		})
	}
}

func TestEventsAreDeterministic(t *testing.T) {
	v := catalog.Version{ETag: `"e-2"`, LSN: 12, TS: 1764072000}
	doc := catalog.Document{Version: v, Product: change(func(p *catalog.Product) { p.Price = 1 })}
	last := &catalog.State{Product: base}
	build := func() []byte {
		c := catalog.Diff(last, &doc)
		evs, err := catalog.Events(&c, v)
		if err != nil {
			t.Fatal(err)
		}
		return marshalEvents(t, evs)
	}
	if a, b := build(), build(); !bytes.Equal(a, b) {
		t.Fatalf("two builds differ:\n%s\n%s", a, b)
	}
	// Another version of the same product gets other ids.
	id1 := catalog.EventID("p-1", v, catalog.TypeUpdated)
	id2 := catalog.EventID("p-1", catalog.Version{ETag: `"e-3"`, LSN: 13}, catalog.TypeUpdated)
	id3 := catalog.EventID("p-1", v, catalog.TypePriceChanged)
	if id1 == id2 || id1 == id3 {
		t.Fatalf("ids collide: %s %s %s", id1, id2, id3)
	}
}

func TestSubjectEscapesSegments(t *testing.T) {
	tests := map[[2]string]string{
		{"tools", "p-1"}:           "/products/tools/p-1",
		{"Home & Garden", "p 2"}:   "/products/Home%20&%20Garden/p%202",
		{"café", "p%3"}:            "/products/caf%C3%A9/p%253",
		{"kitchen", "sku:1234-AB"}: "/products/kitchen/sku:1234-AB",
	}
	for in, want := range tests {
		if got := catalog.Subject(in[0], in[1]); got != want {
			t.Errorf("Subject(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
