package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Product is the public state of a product: the fields partners receive. It is also what the
// published-state store keeps.
type Product struct {
	ID          string  `json:"productId"`
	Name        string  `json:"name"`
	Category    string  `json:"category"`
	Price       float64 `json:"price"`
	Currency    string  `json:"currency"`
	Stock       int64   `json:"stock"`
	Description string  `json:"description,omitempty"`
	ImageURL    string  `json:"imageUrl,omitempty"`
}

// InStock is the availability partners see.
func (p *Product) InStock() bool { return p.Stock > 0 }

// Version identifies one write of a product document in Cosmos DB. ETag changes on every write and
// is the same when the change feed delivers that write again, so it is the version in event ids.
// LSN (the partition's log sequence number) and TS (_ts, seconds) only order versions: a version
// older than the one last published (a dead-letter replay, a second lease prefix) is skipped.
type Version struct {
	ETag string `json:"etag,omitempty"`
	LSN  int64  `json:"lsn,omitempty"`
	TS   int64  `json:"ts,omitempty"`
}

// IsZero reports whether v identifies nothing (a seeded state from a file without system fields).
func (v Version) IsZero() bool { return v == Version{} }

// key is the version's part of an event id.
func (v Version) key() string {
	switch {
	case v.ETag != "":
		return "etag:" + v.ETag
	case v.LSN > 0:
		return "lsn:" + strconv.FormatInt(v.LSN, 10)
	default:
		return "ts:" + strconv.FormatInt(v.TS, 10)
	}
}

// NotNewerThan reports whether v is the same write as, or an older write than, last.
func (v Version) NotNewerThan(last Version) bool {
	if last.IsZero() {
		return false
	}
	if v.ETag != "" && v.ETag == last.ETag {
		return true
	}
	if v.LSN > 0 && last.LSN > 0 {
		return v.LSN <= last.LSN
	}
	if v.TS > 0 && last.TS > 0 {
		// _ts has one-second resolution: two writes in the same second are not ordered by it.
		return v.TS < last.TS
	}
	return false
}

// Document is one decoded product document from the products container.
type Document struct {
	Product Product
	// Deleted is the soft-delete flag (isDeleted). A deleted document's public fields are not
	// validated (a tombstone may carry only its id): its event describes the product as partners
	// last saw it.
	Deleted bool
	Version Version
	// Raw is the document as delivered, kept for dead-letter records.
	Raw json.RawMessage
}

// Problem is one reason a document is not a valid product.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem of one document. It matches ErrInvalid.
type ValidationError struct {
	ProductID string
	Problems  []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	if e.ProductID != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.ProductID))
	}
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Limits of the public fields. They keep every event far below Event Grid's 1 MB per event and make
// the subject a usable filter.
const (
	MaxIDLen          = 255
	MaxNameLen        = 200
	MaxCategoryLen    = 100
	MaxDescriptionLen = 5000
	MaxImageURLLen    = 2048
	MaxPrice          = 1e12
	MaxStock          = 1 << 53 // exact in a float64 (JSON numbers), so every consumer reads the same value
)

// DecodeChange decodes a document delivered by the change feed: a valid product (or a soft-deleted
// one) with its system fields (_ts is required: it is the events' time; _etag, else _lsn, else _ts
// identifies the version in event ids). Errors match ErrInvalid.
func DecodeChange(raw []byte) (Document, error) { return decode(raw, true) }

// DecodeSnapshot decodes a document read for seeding, where system fields may be missing.
func DecodeSnapshot(raw []byte) (Document, error) { return decode(raw, false) }

func decode(raw []byte, requireVersion bool) (Document, error) {
	doc := Document{Raw: raw}
	vals, err := scanMembers(raw)
	if err != nil {
		trimmed := bytes.TrimSpace(raw)
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return doc, &ValidationError{Problems: []Problem{{Message: "document is not a JSON object"}}}
		}
		// Only on this rare path: let encoding/json say precisely what is wrong.
		var x any
		msg := "invalid JSON"
		if jerr := json.Unmarshal(trimmed, &x); jerr != nil {
			msg = jerr.Error()
		}
		return doc, &ValidationError{Problems: []Problem{{Message: "document is not valid JSON: " + msg}}}
	}
	v := validator{vals: &vals}
	p := &doc.Product
	p.ID = v.id()
	doc.Version = v.version(requireVersion)
	doc.Deleted = v.boolean("isDeleted")
	if !doc.Deleted {
		p.Name = v.text("name", MaxNameLen, true, false)
		p.Category = v.category()
		p.Price = v.price()
		p.Currency = v.currency()
		p.Stock = v.stock()
		p.Description = v.text("description", MaxDescriptionLen, false, true)
		p.ImageURL = v.imageURL()
	}
	if len(v.problems) > 0 {
		return doc, &ValidationError{ProductID: p.ID, Problems: v.problems}
	}
	return doc, nil
}

// validator reads fields one by one and collects every problem, so a dead-letter reason says all
// that is wrong at once.
type validator struct {
	vals     *[nFields][]byte
	problems []Problem
}

func (v *validator) fail(field, format string, args ...any) {
	v.problems = append(v.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) failed(field string) bool {
	for _, p := range v.problems {
		if p.Field == field {
			return true
		}
	}
	return false
}

// get returns the raw value of field, or nil when it is absent or null.
func (v *validator) get(field string) []byte {
	i := fieldIndex(field)
	if i < 0 {
		return nil
	}
	r := v.vals[i]
	if len(r) == 0 || string(r) == "null" {
		return nil
	}
	return r
}

func kind(r []byte) string {
	switch {
	case len(r) == 0:
		return "nothing"
	case r[0] == '"':
		return "a string"
	case r[0] == '{':
		return "an object"
	case r[0] == '[':
		return "an array"
	case r[0] == 't' || r[0] == 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

func (v *validator) str(field string, required bool) (string, bool) {
	r := v.get(field)
	if r == nil {
		if required {
			v.fail(field, "is required")
		}
		return "", false
	}
	if r[0] != '"' {
		v.fail(field, "must be a string, got %s", kind(r))
		return "", false
	}
	s, ok := unquote(r)
	if !ok {
		v.fail(field, "is not a valid string")
		return "", false
	}
	return s, true
}

func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

func (v *validator) id() string {
	s, ok := v.str("id", true)
	if !ok {
		return ""
	}
	switch {
	case s == "" || len(s) > MaxIDLen:
		v.fail("id", "must be 1 to %d bytes", MaxIDLen)
	case strings.ContainsAny(s, `/\?#`) || hasControl(s):
		v.fail("id", "must not contain / \\ ? # or control characters")
	}
	return s
}

// text reads a free-text field, trimmed of surrounding spaces: at most max characters and no
// control characters (multiline text may hold newlines and tabs).
func (v *validator) text(field string, max int, required, multiline bool) string {
	s, ok := v.str(field, required)
	if !ok {
		return ""
	}
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	bad := func(r rune) bool {
		return unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r'))
	}
	switch {
	case n == 0 && required:
		v.fail(field, "must not be empty")
	case n > max:
		v.fail(field, "must be at most %d characters, got %d", max, n)
	case strings.IndexFunc(s, bad) >= 0:
		v.fail(field, "must not contain control characters")
	}
	return s
}

func (v *validator) category() string {
	s, ok := v.str("category", true)
	if !ok {
		return ""
	}
	n := utf8.RuneCountInString(s)
	switch {
	case strings.TrimSpace(s) == "":
		v.fail("category", "must not be empty")
	case n > MaxCategoryLen:
		v.fail("category", "must be at most %d characters, got %d", MaxCategoryLen, n)
	case strings.TrimSpace(s) != s:
		v.fail("category", "must not start or end with spaces")
	case strings.ContainsRune(s, '/') || hasControl(s):
		// The category is a segment of the subject partners filter on.
		v.fail("category", "must not contain / or control characters")
	}
	return s
}

func (v *validator) number(field string) (float64, []byte, bool) {
	r := v.get(field)
	if r == nil {
		v.fail(field, "is required")
		return 0, nil, false
	}
	if k := kind(r); k != "a number" {
		v.fail(field, "must be a number, got %s", k)
		return 0, nil, false
	}
	f, err := strconv.ParseFloat(string(r), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		v.fail(field, "must be a finite number, got %s", truncate(string(r), 40))
		return 0, nil, false
	}
	return f, r, true
}

func (v *validator) price() float64 {
	f, _, ok := v.number("price")
	if !ok {
		return 0
	}
	if f < 0 || f > MaxPrice {
		v.fail("price", "must be between 0 and %g, got %g", float64(MaxPrice), f)
	}
	if f == 0 {
		f = 0 // -0 would be published as -0
	}
	return f
}

func (v *validator) currency() string {
	s, ok := v.str("currency", true)
	if !ok {
		return ""
	}
	if !IsCurrency(s) {
		if IsCurrency(strings.ToUpper(s)) {
			v.fail("currency", "%q is not an ISO 4217 code: codes are upper case (%s)", s, strings.ToUpper(s))
		} else {
			v.fail("currency", "%q is not an ISO 4217 currency code", truncate(s, 20))
		}
	}
	return s
}

func (v *validator) stock() int64 {
	f, r, ok := v.number("stock")
	if !ok {
		return 0
	}
	// 42 and 42.0 are the same integer (a serializer may write either); 4.5 is not one.
	if n, err := strconv.ParseInt(string(r), 10, 64); err == nil {
		if n < 0 || n > MaxStock {
			v.fail("stock", "must be between 0 and %d, got %d", int64(MaxStock), n)
		}
		return n
	}
	if f != math.Trunc(f) {
		v.fail("stock", "must be an integer, got %s", truncate(string(r), 40))
		return 0
	}
	if f < 0 || f > MaxStock {
		v.fail("stock", "must be between 0 and %d, got %s", int64(MaxStock), truncate(string(r), 40))
		return 0
	}
	return int64(f)
}

func (v *validator) imageURL() string {
	s, ok := v.str("imageUrl", false)
	if !ok {
		return ""
	}
	if len(s) > MaxImageURLLen {
		v.fail("imageUrl", "must be at most %d bytes", MaxImageURLLen)
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || hasControl(s) || strings.ContainsAny(s, " \"<>\\^`{|}") {
		v.fail("imageUrl", "must be an absolute https URL, got %q", truncate(s, 80))
	}
	return s
}

func (v *validator) boolean(field string) bool {
	r := v.get(field)
	switch string(r) {
	case "", "false":
		return false
	case "true":
		return true
	}
	v.fail(field, "must be true or false, got %s", kind(r))
	return false
}

func (v *validator) version(required bool) Version {
	var ver Version
	if r := v.get("_etag"); r != nil {
		if s, ok := v.str("_etag", false); ok {
			ver.ETag = s
		}
	}
	ver.LSN = v.counter("_lsn")
	ver.TS = v.counter("_ts")
	if required && ver.TS == 0 && !v.failed("_ts") {
		// Cosmos DB sets _ts on every write; it is the event time, so events rebuilt later are
		// identical.
		v.fail("_ts", "is required (Cosmos DB sets it on every write)")
	}
	return ver
}

func (v *validator) counter(field string) int64 {
	r := v.get(field)
	if r == nil {
		return 0
	}
	n, err := strconv.ParseInt(string(r), 10, 64)
	if err != nil || n < 0 {
		v.fail(field, "must be a non-negative integer, got %s", truncate(string(r), 40))
		return 0
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
