// Package feedback owns the partner feedback domain: the feedback model and its validation, the
// decoding of what partners send (plain JSON, CloudEvents structured, binary and batch), the
// CloudEvents published for accepted feedback, who the calling partner is, the per-partner rate
// limit, and idempotency (the same partner sending the same id within 24 hours gets the same answer
// and nothing is published twice).
//
// It has no HTTP and no Azure SDK: handlers/partner_feedback.go maps HTTP onto it, and the events go
// out through a Sender (Event Hubs in Azure, a JSON-lines file locally).
package feedback

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"
)

// Kinds of feedback.
const (
	KindProduct  = "product"
	KindCustomer = "customer"
)

// Limits of the feedback fields.
const (
	MaxTitle   = 200  // characters
	MaxComment = 4000 // characters
	MaxRef     = 128  // characters of productId, orderId, customerRef
	MaxKey     = 256  // characters of an idempotency key (CloudEvent id or Idempotency-Key)
	MaxBatch   = 100  // events in one application/cloudevents-batch+json request
)

// Feedback is one piece of partner feedback, as accepted and as published (the data of the
// CloudEvent). PartnerID is always the calling partner in what is published.
type Feedback struct {
	Kind        string     `json:"kind"`
	PartnerID   string     `json:"partnerId,omitempty"`
	ProductID   string     `json:"productId,omitempty"`
	OrderID     string     `json:"orderId,omitempty"`
	CustomerRef string     `json:"customerRef,omitempty"`
	Rating      *int       `json:"rating,omitempty"`
	Title       string     `json:"title,omitempty"`
	Comment     string     `json:"comment,omitempty"`
	Locale      string     `json:"locale,omitempty"`
	SubmittedAt *time.Time `json:"submittedAt,omitempty"`
}

// Errors the API answers with a precise status (see handlers/partner_feedback.go).
var (
	// ErrMalformed: the body is not JSON (400).
	ErrMalformed = errors.New("malformed JSON")
	// ErrUnauthenticated: no caller identity at all (401).
	ErrUnauthenticated = errors.New("no caller identity")
	// ErrForbidden: the caller is not a partner, or the body names another partner (403).
	ErrForbidden = errors.New("not allowed for this caller")
	// ErrKeyReused: an idempotency key already used for different feedback within 24 hours (409).
	ErrKeyReused = errors.New("idempotency key already used for different feedback")
)

// FieldError is one invalid field. Field is a JSON path such as "rating", "data.rating" or
// "[3].data.rating"; Message never repeats the field's value (comments and titles are never echoed
// nor logged).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// InvalidError lists every field error of a request (422).
type InvalidError struct {
	Errors []FieldError
}

func (e *InvalidError) Error() string {
	if len(e.Errors) == 1 {
		return fmt.Sprintf("invalid feedback: %s %s", e.Errors[0].Field, e.Errors[0].Message)
	}
	return fmt.Sprintf("invalid feedback: %d field errors", len(e.Errors))
}

// InProgressError: another request with the same idempotency key is being processed now (409 with
// Retry-After).
type InProgressError struct {
	Key        string
	RetryAfter time.Duration
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("a request with idempotency key %q is in progress", e.Key)
}

// errs collects field errors under a path prefix.
type errs struct {
	prefix string
	list   *[]FieldError
}

func (e errs) add(field, msg string) {
	*e.list = append(*e.list, FieldError{Field: strings.TrimSuffix(e.prefix+field, "."), Message: msg})
}

func (e errs) sub(prefix string) errs { return errs{prefix: e.prefix + prefix, list: e.list} }

// Validate checks f against the rules of the API and reports every violation under prefix.
func (f *Feedback) validate(e errs) {
	switch f.Kind {
	case KindProduct:
		if f.ProductID == "" {
			e.add("productId", "is required for product feedback")
		}
	case KindCustomer:
		if f.OrderID == "" && f.CustomerRef == "" {
			e.add("orderId", "orderId or customerRef is required for customer feedback")
		}
	case "":
		e.add("kind", `is required ("product" or "customer")`)
	default:
		e.add("kind", `must be "product" or "customer"`)
	}
	if f.Rating != nil && (*f.Rating < 1 || *f.Rating > 5) {
		e.add("rating", "must be an integer from 1 to 5")
	}
	if n := utf8.RuneCountInString(f.Title); n > MaxTitle {
		e.add("title", fmt.Sprintf("must be at most %d characters (got %d)", MaxTitle, n))
	}
	if n := utf8.RuneCountInString(f.Comment); n > MaxComment {
		e.add("comment", fmt.Sprintf("must be at most %d characters (got %d)", MaxComment, n))
	}
	if f.Locale != "" {
		if _, err := language.Parse(f.Locale); err != nil || len(f.Locale) > 35 {
			e.add("locale", "must be a BCP 47 language tag such as en-GB")
		}
	}
}

// checkRef validates an identifier that becomes part of a CloudEvent subject and a partition key.
func checkRef(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case utf8.RuneCountInString(s) > MaxRef:
		return fmt.Sprintf("must be at most %d characters", MaxRef)
	case strings.ContainsAny(s, `/\?#`) || strings.IndexFunc(s, unicode.IsControl) >= 0 || strings.TrimSpace(s) != s:
		return `must not contain / \ ? #, control characters or surrounding spaces`
	}
	return ""
}

// CheckKey validates an idempotency key (a CloudEvent id or an Idempotency-Key header); it returns
// "" when the key is acceptable.
func CheckKey(k string) string {
	switch {
	case k == "":
		return "must not be empty"
	case len(k) > MaxKey:
		return fmt.Sprintf("must be at most %d bytes", MaxKey)
	case !utf8.ValidString(k) || strings.IndexFunc(k, unicode.IsControl) >= 0:
		return "must be valid UTF-8 text without control characters"
	}
	return ""
}

// Subject is the CloudEvent subject of f: /products/<productId> for product feedback, and for
// customer feedback /orders/<orderId> when there is an order, else /customers/<customerRef>.
func (f *Feedback) Subject() string {
	if f.Kind == KindProduct {
		return "/products/" + f.ProductID
	}
	if f.OrderID != "" {
		return "/orders/" + f.OrderID
	}
	return "/customers/" + f.CustomerRef
}
