package feedback

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fieldErrors returns the field errors of err, failing the test if it is not an *InvalidError.
func fieldErrors(t *testing.T, err error) []FieldError {
	t.Helper()
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("error %v is not an *InvalidError", err)
	}
	return inv.Errors
}

func TestDecodeJSON(t *testing.T) {
	at := time.Date(2026, 11, 25, 11, 58, 0, 0, time.UTC)
	got, err := DecodeJSON(mustRead(t, "product.json"), ptr("k-1"))
	if err != nil {
		t.Fatal(err)
	}
	want := Submission{Key: "k-1", Feedback: Feedback{Kind: KindProduct, ProductID: "p-100", Rating: ptr(4), Title: "Sturdy",
		Comment: "Good grip, a bit heavy.", Locale: "en-GB", SubmittedAt: &at}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Submission{})); diff != "" {
		t.Errorf("DecodeJSON (-want +got):\n%s", diff)
	}
}

func TestDecodeJSONFieldErrors(t *testing.T) {
	long := strings.Repeat("é", MaxComment+1)
	tests := []struct {
		name string
		body string
		key  *string
		want []FieldError
	}{
		{"no kind", `{}`, nil, []FieldError{{"kind", `is required ("product" or "customer")`}}},
		{"unknown kind", `{"kind":"service"}`, nil, []FieldError{{"kind", `must be "product" or "customer"`}}},
		{"product without productId", `{"kind":"product","rating":3}`, nil, []FieldError{{"productId", "is required for product feedback"}}},
		{"customer without order or ref", `{"kind":"customer"}`, nil, []FieldError{{"orderId", "orderId or customerRef is required for customer feedback"}}},
		{"every field wrong at once",
			`{"kind":"product","productId":"a/b","rating":6,"title":"` + strings.Repeat("t", 201) + `","comment":"` + long + `","locale":"english please","submittedAt":"yesterday","colour":"red"}`,
			ptr(""),
			[]FieldError{
				{"Idempotency-Key", "must not be empty"},
				{"submittedAt", "must be an RFC 3339 timestamp such as 2026-11-25T12:00:00Z"},
				{"colour", "is not a feedback field (known: kind, partnerId, productId, orderId, customerRef, rating, title, comment, locale, submittedAt)"},
				{"productId", `must not contain / \ ? #, control characters or surrounding spaces`},
				{"rating", "must be an integer from 1 to 5"},
				{"title", "must be at most 200 characters (got 201)"},
				{"comment", "must be at most 4000 characters (got 4001)"},
				{"locale", "must be a BCP 47 language tag such as en-GB"},
			}},
		{"wrong types", `{"kind":1,"productId":2,"rating":"5","title":true,"comment":[],"submittedAt":3}`, nil, []FieldError{
			{"kind", "must be a string"}, {"productId", "must be a string"}, {"rating", "must be an integer from 1 to 5"},
			{"title", "must be a string"}, {"comment", "must be a string"}, {"submittedAt", "must be a string"},
		}},
		{"fractional rating", `{"kind":"product","productId":"p","rating":4.5}`, nil, []FieldError{{"rating", "must be an integer from 1 to 5"}}},
		{"empty ids", `{"kind":"customer","orderId":"","customerRef":" x"}`, nil, []FieldError{
			{"orderId", "must not be empty"}, {"customerRef", `must not contain / \ ? #, control characters or surrounding spaces`},
		}},
		{"not an object", `[1,2]`, nil, []FieldError{{"", "must be a JSON object"}}},
		{"key with control characters", `{"kind":"product","productId":"p"}`, ptr("a\nb"), []FieldError{{"Idempotency-Key", "must be valid UTF-8 text without control characters"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeJSON([]byte(tt.body), tt.key)
			if diff := cmp.Diff(tt.want, fieldErrors(t, err)); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, body := range []string{``, `  `, `{"kind":`, `{"comment":"secret text" x}`, `nul`} {
		_, err := DecodeJSON([]byte(body), nil)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeJSON(%q) = %v, want ErrMalformed", body, err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("the error quotes the body: %v", err)
		}
		if _, err := DecodeBatch([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeBatch(%q) = %v, want ErrMalformed", body, err)
		}
	}
}

func TestDecodeStructured(t *testing.T) {
	at := time.Date(2026, 11, 25, 11, 59, 0, 0, time.UTC)
	got, err := DecodeStructured(mustRead(t, "structured.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Submission{Key: "fb-2026-0001", claimed: []string{"acme"},
		Feedback: Feedback{Kind: KindCustomer, OrderID: "o-42", Rating: ptr(5), Comment: "Fast delivery.", SubmittedAt: &at}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Submission{})); diff != "" {
		t.Errorf("DecodeStructured (-want +got):\n%s", diff)
	}
}

func TestDecodeStructuredFieldErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []FieldError
	}{
		{"attributes missing", `{"data":{"kind":"product","productId":"p"}}`, []FieldError{
			{"specversion", `is required ("1.0")`}, {"id", "is required"},
			{"source", "is required (a URI-reference, e.g. /partners/<partnerId>)"},
			{"type", "is required (com.contoso.feedback.product.submitted or com.contoso.feedback.customer.submitted)"},
		}},
		{"wrong attributes and data", `{"specversion":"0.3","id":7,"source":"/partners/acme","type":"com.contoso.other","time":"noon","datacontenttype":"text/plain","data":{"kind":"product","rating":0}}`, []FieldError{
			{"id", "must be a string"}, {"datacontenttype", "must be application/json (or absent)"},
			{"specversion", `must be "1.0"`},
			{"type", "must be com.contoso.feedback.product.submitted or com.contoso.feedback.customer.submitted"},
			{"time", "must be an RFC 3339 timestamp"},
			{"data.productId", "is required for product feedback"}, {"data.rating", "must be an integer from 1 to 5"},
		}},
		{"kind contradicts type", `{"specversion":"1.0","id":"1","source":"/x","type":"com.contoso.feedback.product.submitted","data":{"kind":"customer","orderId":"o"}}`, []FieldError{
			{"data.kind", `"customer" contradicts the event type (type)`},
		}},
		{"no data", `{"specversion":"1.0","id":"1","source":"/x","type":"com.contoso.feedback.product.submitted"}`, []FieldError{{"data", "is required (the feedback object)"}}},
		{"base64 data", `{"specversion":"1.0","id":"1","source":"/x","type":"com.contoso.feedback.product.submitted","data_base64":"e30="}`, []FieldError{
			{"data_base64", "is not accepted: send the feedback as a JSON object in data"}, {"data", "is required (the feedback object)"},
		}},
		{"data not an object", `{"specversion":"1.0","id":"1","source":"/x","type":"com.contoso.feedback.product.submitted","data":"p-1"}`, []FieldError{{"data", "must be a JSON object"}}},
		{"not an object", `"hello"`, []FieldError{{"", "must be a CloudEvent (a JSON object)"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeStructured([]byte(tt.body))
			if diff := cmp.Diff(tt.want, fieldErrors(t, err)); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeBinary(t *testing.T) {
	attrs := map[string]string{"specversion": "1.0", "id": "b-1", "source": "/partners/acme/shop", "type": TypeProductSubmitted, "subject": "ignored"}
	got, err := DecodeBinary(attrs, []byte(`{"productId":"p-9","rating":2}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Submission{Key: "b-1", claimed: []string{"acme"}, Feedback: Feedback{Kind: KindProduct, ProductID: "p-9", Rating: ptr(2)}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Submission{})); diff != "" {
		t.Errorf("DecodeBinary (-want +got):\n%s", diff)
	}
	_, err = DecodeBinary(map[string]string{"specversion": "1.0"}, []byte(`{"rating":9}`))
	wantErrs := []FieldError{
		{"ce-id", "is required"}, {"ce-source", "is required (a URI-reference, e.g. /partners/<partnerId>)"},
		{"ce-type", "is required (com.contoso.feedback.product.submitted or com.contoso.feedback.customer.submitted)"},
		{"kind", `is required ("product" or "customer")`}, {"rating", "must be an integer from 1 to 5"},
	}
	if diff := cmp.Diff(wantErrs, fieldErrors(t, err)); diff != "" {
		t.Errorf("field errors (-want +got):\n%s", diff)
	}
}

func TestDecodeBatch(t *testing.T) {
	got, err := DecodeBatch(mustRead(t, "batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keys, subjects []string
	for _, s := range got {
		keys = append(keys, s.Key)
		subjects = append(subjects, s.Feedback.Subject())
	}
	if diff := cmp.Diff([]string{"fb-b-1", "fb-b-2", "fb-b-3"}, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/products/p-100", "/customers/c-7", "/products/p-200"}, subjects); diff != "" {
		t.Errorf("subjects (-want +got):\n%s", diff)
	}

	tests := []struct {
		name string
		body string
		want []FieldError
	}{
		{"empty", `[]`, []FieldError{{"", "must hold 1 to 100 events (got 0)"}}},
		{"too many", "[" + strings.TrimSuffix(strings.Repeat(`{},`, MaxBatch+1), ",") + "]", []FieldError{{"", "must hold 1 to 100 events (got 101)"}}},
		{"object", `{"id":"1"}`, []FieldError{{"", "must be a JSON array of CloudEvents"}}},
		{"duplicate ids and a bad item", `[
			{"specversion":"1.0","id":"x","source":"/s","type":"com.contoso.feedback.product.submitted","data":{"productId":"p"}},
			{"specversion":"1.0","id":"x","source":"/s","type":"com.contoso.feedback.product.submitted","data":{"productId":"q"}},
			7]`, []FieldError{{"[1].id", "duplicates the id of event [0]"}, {"[2]", "must be a CloudEvent (a JSON object)"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBatch([]byte(tt.body))
			if diff := cmp.Diff(tt.want, fieldErrors(t, err)); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsJSONMediaType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "application/json; charset=utf-8": true, "application/json; charset=UTF-8": true,
		"application/cloudevents+json": true, "application/json; charset=latin1": false, "text/plain": false, "": false, "json": false,
	} {
		if got := IsJSONMediaType(ct); got != want {
			t.Errorf("IsJSONMediaType(%q) = %v, want %v", ct, got, want)
		}
	}
}

// The decoders read outside input: whatever the bytes, they return a value or an error, never panic,
// and accepted feedback always passes the rules.
func FuzzDecodeJSON(f *testing.F) {
	f.Add(mustRead(f, "product.json"), "k")
	f.Add([]byte(`{"kind":"customer","customerRef":"c","rating":1e400}`), "")
	f.Add([]byte(`{"kind":"product","productId":"p","submittedAt":"2026-02-30T25:00:00Z"}`), "\x00")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		s, err := DecodeJSON(body, &key)
		if err == nil {
			checkAccepted(t, s)
		}
	})
}

func FuzzDecodeStructured(f *testing.F) {
	f.Add(mustRead(f, "structured.json"))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/partners/","type":"com.contoso.feedback.product.submitted","data":{"productId":"p"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := DecodeStructured(body)
		if err == nil {
			checkAccepted(t, s)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(mustRead(f, "batch.json"))
	f.Add([]byte(`[{"specversion":"1.0","id":"x"},{"id":"x"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		subs, err := DecodeBatch(body)
		if err != nil {
			return
		}
		if len(subs) == 0 || len(subs) > MaxBatch {
			t.Fatalf("accepted a batch of %d", len(subs))
		}
		seen := map[string]bool{}
		for _, s := range subs {
			checkAccepted(t, s)
			if seen[s.Key] {
				t.Fatalf("accepted duplicate id %q", s.Key)
			}
			seen[s.Key] = true
		}
	})
}

func FuzzDecodeBinary(f *testing.F) {
	f.Add("1.0", "id-1", "/partners/acme", TypeCustomerSubmitted, "2026-11-25T12:00:00Z", []byte(`{"orderId":"o"}`))
	f.Fuzz(func(t *testing.T, spec, id, source, typ, at string, body []byte) {
		s, err := DecodeBinary(map[string]string{"specversion": spec, "id": id, "source": source, "type": typ, "time": at}, body)
		if err == nil {
			checkAccepted(t, s)
		}
	})
}

func FuzzDecodeClientPrincipal(f *testing.F) {
	f.Add("eyJhdXRoX3R5cCI6ImFhZCIsImNsYWltcyI6W3sidHlwIjoiYXBwaWQiLCJ2YWwiOiJhYmMifV19")
	f.Add("not base64!")
	f.Fuzz(func(t *testing.T, header string) {
		p, err := DecodeClientPrincipal(header)
		if err == nil && p == nil {
			t.Fatal("nil principal without an error")
		}
	})
}

// checkAccepted asserts what every accepted submission guarantees to the rest of the system.
func checkAccepted(t *testing.T, s Submission) {
	t.Helper()
	var list []FieldError
	s.Feedback.validate(errs{list: &list})
	if len(list) > 0 {
		t.Fatalf("accepted feedback breaks the rules: %v", list)
	}
	for _, ref := range []string{s.Feedback.ProductID, s.Feedback.OrderID, s.Feedback.CustomerRef} {
		if ref != "" && checkRef(ref) != "" {
			t.Fatalf("accepted reference %q: %s", ref, checkRef(ref))
		}
	}
	if s.Key != "" && CheckKey(s.Key) != "" {
		t.Fatalf("accepted key %q: %s", s.Key, CheckKey(s.Key))
	}
	if _, err := s.build("acme", "id-1", time.Unix(0, 0)); err != nil {
		t.Fatalf("accepted feedback does not make an event: %v", err)
	}
}
