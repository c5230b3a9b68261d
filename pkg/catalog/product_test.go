package catalog_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/contoso/eventpipeline/pkg/catalog"
)

// hammer is a valid change-feed document with system and internal fields.
const hammer = `{"id":"p-100","name":"Claw hammer","category":"tools","price":19.99,"currency":"EUR","stock":42,
"description":"Forged steel.","imageUrl":"https://img.contoso.example/p-100.jpg","supplierCode":"ACME-7",
"_rid":"hXk9AKtYvWUBAAAAAAAAAA==","_self":"dbs/hXk9AA==/colls/hXk9AKtYvWU=/docs/hXk9AKtYvWUBAAAAAAAAAA==/",
"_etag":"\"0b00f1c2-0000-0d00-0000-671abf110000\"","_attachments":"attachments/","_ts":1729805073,"_lsn":7}`

// with returns hammer with fields set (nil removes a field).
func with(t testing.TB, base string, set map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
			continue
		}
		if r, ok := v.(json.RawMessage); ok {
			var x any
			if err := json.Unmarshal(r, &x); err != nil {
				t.Fatal(err)
			}
			v = x
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeChangeValid(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want catalog.Document
	}{
		{
			name: "full document, system and internal fields ignored",
			raw:  []byte(hammer),
			want: catalog.Document{
				Product: catalog.Product{ID: "p-100", Name: "Claw hammer", Category: "tools", Price: 19.99, Currency: "EUR", Stock: 42,
					Description: "Forged steel.", ImageURL: "https://img.contoso.example/p-100.jpg"},
				Version: catalog.Version{ETag: `"0b00f1c2-0000-0d00-0000-671abf110000"`, LSN: 7, TS: 1729805073},
			},
		},
		{
			name: "optional fields absent or null, stock written as 3.0, price 0",
			raw:  with(t, hammer, map[string]any{"description": json.RawMessage("null"), "imageUrl": nil, "stock": json.RawMessage("3.0"), "price": 0}),
			want: catalog.Document{
				Product: catalog.Product{ID: "p-100", Name: "Claw hammer", Category: "tools", Price: 0, Currency: "EUR", Stock: 3},
				Version: catalog.Version{ETag: `"0b00f1c2-0000-0d00-0000-671abf110000"`, LSN: 7, TS: 1729805073},
			},
		},
		{
			name: "names are trimmed, description keeps newlines",
			raw:  with(t, hammer, map[string]any{"name": "  Claw hammer ", "description": "Line 1\nLine 2\t."}),
			want: catalog.Document{
				Product: catalog.Product{ID: "p-100", Name: "Claw hammer", Category: "tools", Price: 19.99, Currency: "EUR", Stock: 42,
					Description: "Line 1\nLine 2\t.", ImageURL: "https://img.contoso.example/p-100.jpg"},
				Version: catalog.Version{ETag: `"0b00f1c2-0000-0d00-0000-671abf110000"`, LSN: 7, TS: 1729805073},
			},
		},
		{
			name: "soft-deleted tombstone needs only id and version",
			raw:  []byte(`{"id":"p-100","isDeleted":true,"ttl":86400,"_etag":"\"e9\"","_ts":1729809999}`),
			want: catalog.Document{Product: catalog.Product{ID: "p-100"}, Deleted: true, Version: catalog.Version{ETag: `"e9"`, TS: 1729809999}},
		},
		{
			name: "soft-deleted document with invalid public fields is still a delete",
			raw:  with(t, hammer, map[string]any{"isDeleted": true, "price": "n/a", "currency": "??"}),
			want: catalog.Document{Product: catalog.Product{ID: "p-100"}, Deleted: true,
				Version: catalog.Version{ETag: `"0b00f1c2-0000-0d00-0000-671abf110000"`, LSN: 7, TS: 1729805073}},
		},
		{
			name: "isDeleted false",
			raw:  with(t, hammer, map[string]any{"isDeleted": false, "description": nil, "imageUrl": nil}),
			want: catalog.Document{
				Product: catalog.Product{ID: "p-100", Name: "Claw hammer", Category: "tools", Price: 19.99, Currency: "EUR", Stock: 42},
				Version: catalog.Version{ETag: `"0b00f1c2-0000-0d00-0000-671abf110000"`, LSN: 7, TS: 1729805073},
			},
		},
		{
			name: "category with spaces and ampersand",
			raw:  with(t, hammer, map[string]any{"category": "Home & Garden", "description": nil, "imageUrl": nil}),
			want: catalog.Document{
				Product: catalog.Product{ID: "p-100", Name: "Claw hammer", Category: "Home & Garden", Price: 19.99, Currency: "EUR", Stock: 42},
				Version: catalog.Version{ETag: `"0b00f1c2-0000-0d00-0000-671abf110000"`, LSN: 7, TS: 1729805073},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := catalog.DecodeChange(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(catalog.Document{}, "Raw")); diff != "" {
				t.Fatalf("DecodeChange (-want +got):\n%s", diff)
			}
			if string(got.Raw) != string(tt.raw) {
				t.Fatalf("Raw not kept")
			}
		})
	}
}

func TestDecodeChangeReasons(t *testing.T) {
	type P = catalog.Problem
	tests := []struct {
		name string
		raw  []byte
		want []P
	}{
		{"not an object", []byte(`[1,2]`), []P{{"", "document is not a JSON object"}}},
		{"empty", []byte(``), []P{{"", "document is not a JSON object"}}},
		{"truncated", []byte(`{"id":"p`), []P{{"", "document is not valid JSON: unexpected end of JSON input"}}},
		{"id missing", with(t, hammer, map[string]any{"id": nil}), []P{{"id", "is required"}}},
		{"id not a string", with(t, hammer, map[string]any{"id": 100}), []P{{"id", "must be a string, got a number"}}},
		{"id with slash", with(t, hammer, map[string]any{"id": "a/b"}), []P{{"id", "must not contain / \\ ? # or control characters"}}},
		{"id too long", with(t, hammer, map[string]any{"id": strings.Repeat("x", 256)}), []P{{"id", "must be 1 to 255 bytes"}}},
		{"name missing", with(t, hammer, map[string]any{"name": nil}), []P{{"name", "is required"}}},
		{"name blank", with(t, hammer, map[string]any{"name": "   "}), []P{{"name", "must not be empty"}}},
		{"name too long", with(t, hammer, map[string]any{"name": strings.Repeat("é", 201)}), []P{{"name", "must be at most 200 characters, got 201"}}},
		{"name with a newline", with(t, hammer, map[string]any{"name": "a\nb"}), []P{{"name", "must not contain control characters"}}},
		{"category slash", with(t, hammer, map[string]any{"category": "tools/hand"}), []P{{"category", "must not contain / or control characters"}}},
		{"category padded", with(t, hammer, map[string]any{"category": " tools"}), []P{{"category", "must not start or end with spaces"}}},
		{"category an object", with(t, hammer, map[string]any{"category": map[string]any{"id": 1}}), []P{{"category", "must be a string, got an object"}}},
		{"price a string", with(t, hammer, map[string]any{"price": "19.99"}), []P{{"price", "must be a number, got a string"}}},
		{"price negative", with(t, hammer, map[string]any{"price": -1}), []P{{"price", "must be between 0 and 1e+12, got -1"}}},
		{"price missing", with(t, hammer, map[string]any{"price": nil}), []P{{"price", "is required"}}},
		{"price overflows", []byte(strings.Replace(hammer, `"price":19.99`, `"price":1e400`, 1)), []P{{"price", "must be a finite number, got 1e400"}}},
		{"currency lower case", with(t, hammer, map[string]any{"currency": "eur"}), []P{{"currency", `"eur" is not an ISO 4217 code: codes are upper case (EUR)`}}},
		{"currency unknown", with(t, hammer, map[string]any{"currency": "EURO"}), []P{{"currency", `"EURO" is not an ISO 4217 currency code`}}},
		{"currency withdrawn", with(t, hammer, map[string]any{"currency": "DEM"}), []P{{"currency", `"DEM" is not an ISO 4217 currency code`}}},
		{"currency test code", with(t, hammer, map[string]any{"currency": "XTS"}), []P{{"currency", `"XTS" is not an ISO 4217 currency code`}}},
		{"stock fractional", with(t, hammer, map[string]any{"stock": 4.5}), []P{{"stock", "must be an integer, got 4.5"}}},
		{"stock negative", with(t, hammer, map[string]any{"stock": -3}), []P{{"stock", "must be between 0 and 9007199254740992, got -3"}}},
		{"stock a string", with(t, hammer, map[string]any{"stock": "3"}), []P{{"stock", "must be a number, got a string"}}},
		{"stock a boolean", with(t, hammer, map[string]any{"stock": true}), []P{{"stock", "must be a number, got a boolean"}}},
		{"description an array", with(t, hammer, map[string]any{"description": []string{"a"}}), []P{{"description", "must be a string, got an array"}}},
		{"description too long", with(t, hammer, map[string]any{"description": strings.Repeat("d", 5001)}), []P{{"description", "must be at most 5000 characters, got 5001"}}},
		{"imageUrl http", with(t, hammer, map[string]any{"imageUrl": "http://img.contoso.example/a.jpg"}), []P{{"imageUrl", `must be an absolute https URL, got "http://img.contoso.example/a.jpg"`}}},
		{"imageUrl relative", with(t, hammer, map[string]any{"imageUrl": "/img/a.jpg"}), []P{{"imageUrl", `must be an absolute https URL, got "/img/a.jpg"`}}},
		{"imageUrl with credentials", with(t, hammer, map[string]any{"imageUrl": "https://u:p@img.contoso.example/a.jpg"}), []P{{"imageUrl", `must be an absolute https URL, got "https://u:p@img.contoso.example/a.jpg"`}}},
		{"isDeleted a string", with(t, hammer, map[string]any{"isDeleted": "yes"}), []P{{"isDeleted", "must be true or false, got a string"}}},
		{"no _ts", with(t, hammer, map[string]any{"_ts": nil}), []P{{"_ts", "is required (Cosmos DB sets it on every write)"}}},
		{"_ts zero", with(t, hammer, map[string]any{"_ts": 0}), []P{{"_ts", "is required (Cosmos DB sets it on every write)"}}},
		{"negative _lsn", with(t, hammer, map[string]any{"_lsn": -7}), []P{{"_lsn", "must be a non-negative integer, got -7"}}},
		{"every problem at once", with(t, hammer, map[string]any{"name": 5, "price": "x", "currency": "ZZZ", "stock": 1.5}), []P{
			{"name", "must be a string, got a number"},
			{"price", "must be a number, got a string"},
			{"currency", `"ZZZ" is not an ISO 4217 currency code`},
			{"stock", "must be an integer, got 1.5"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := catalog.DecodeChange(tt.raw)
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			var ve *catalog.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err %T is not a *ValidationError", err)
			}
			if diff := cmp.Diff(tt.want, ve.Problems); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	_, err := catalog.DecodeChange(with(t, hammer, map[string]any{"price": "x", "currency": "ZZZ"}))
	want := `invalid product document "p-100": price: must be a number, got a string; currency: "ZZZ" is not an ISO 4217 currency code`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
}

func TestDecodeSnapshotNeedsNoVersion(t *testing.T) {
	raw := with(t, hammer, map[string]any{"_etag": nil, "_lsn": nil, "_ts": nil})
	d, err := catalog.DecodeSnapshot(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Version.IsZero() || d.Product.ID != "p-100" {
		t.Fatalf("got %+v", d)
	}
}

func TestVersionNotNewerThan(t *testing.T) {
	tests := []struct {
		name    string
		v, last catalog.Version
		want    bool
	}{
		{"same etag", catalog.Version{ETag: "a", LSN: 5}, catalog.Version{ETag: "a", LSN: 5}, true},
		{"older lsn", catalog.Version{ETag: "a", LSN: 4}, catalog.Version{ETag: "b", LSN: 5}, true},
		{"newer lsn", catalog.Version{ETag: "c", LSN: 6}, catalog.Version{ETag: "b", LSN: 5}, false},
		{"older ts without lsn", catalog.Version{ETag: "a", TS: 9}, catalog.Version{ETag: "b", TS: 10}, true},
		{"same second, other etag: not ordered, so newer", catalog.Version{ETag: "a", TS: 10}, catalog.Version{ETag: "b", TS: 10}, false},
		{"seeded without a version", catalog.Version{ETag: "a", LSN: 1}, catalog.Version{}, false},
	}
	for _, tt := range tests {
		if got := tt.v.NotNewerThan(tt.last); got != tt.want {
			t.Errorf("%s: NotNewerThan = %v, want %v", tt.name, got, tt.want)
		}
	}
}
