package catalog_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/contoso/eventpipeline/pkg/catalog"
)

// FuzzDecodeChange: any input decodes to a valid product or fails with ErrInvalid and at least one
// reason, never panics; a product that decodes always builds valid CloudEvents whose data reads
// back as the same product.
func FuzzDecodeChange(f *testing.F) {
	f.Add([]byte(hammer))
	f.Add([]byte(`{"id":"p-100","isDeleted":true,"_etag":"\"e9\""}`))
	f.Add([]byte(`{"id":"p","name":"n","category":"c","price":1e308,"currency":"EUR","stock":9007199254740992,"_lsn":1}`))
	f.Add([]byte(`{"id":"p","name":"n","category":"c","price":-0,"currency":"EUR","stock":1.0e2,"_ts":1,"imageUrl":"https://x/%zz"}`))
	f.Add([]byte(`{"id":"\u0000","name":"\ud800","category":"/","price":"1","currency":"eur","stock":-1}`))
	f.Add([]byte(`{"id":"p","id":"q","name":null,"_lsn":"7"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := catalog.DecodeChange(raw)
		if err != nil {
			var ve *catalog.ValidationError
			if !errors.Is(err, catalog.ErrInvalid) || !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("err %v: want a ValidationError with reasons", err)
			}
			if !utf8.ValidString(err.Error()) && utf8.Valid(raw) {
				t.Fatalf("reason is not UTF-8: %q", err.Error())
			}
			return
		}
		p := doc.Product
		if p.ID == "" || strings.ContainsAny(p.ID, `/\?#`) || doc.Version.IsZero() {
			t.Fatalf("accepted id %q / version %+v", p.ID, doc.Version)
		}
		if doc.Deleted {
			return
		}
		if !catalog.IsCurrency(p.Currency) || p.Stock < 0 || p.Price < 0 || math.IsInf(p.Price, 0) || math.IsNaN(p.Price) ||
			p.Name == "" || p.Category == "" || strings.Contains(p.Category, "/") {
			t.Fatalf("accepted invalid product %+v", p)
		}
		c := catalog.Diff(nil, &doc)
		evs, err := catalog.Events(&c, doc.Version)
		if err != nil || len(evs) != 1 {
			t.Fatalf("events %v, %v", evs, err)
		}
		if err := evs[0].Validate(); err != nil {
			t.Fatalf("invalid CloudEvent: %v", err)
		}
		if evs[0].Time().IsZero() {
			t.Fatalf("event without time from %q", raw)
		}
		var back catalog.EventData
		if err := json.Unmarshal(evs[0].Data(), &back); err != nil {
			t.Fatalf("data does not decode: %v", err)
		}
		if back.Product != p {
			t.Fatalf("data round trip: %+v != %+v", back.Product, p)
		}
	})
}
