package feedback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event types of accepted feedback.
const (
	TypeProductSubmitted  = "com.contoso.feedback.product.submitted"
	TypeCustomerSubmitted = "com.contoso.feedback.customer.submitted"
)

// Submission is one piece of feedback as a partner sent it, decoded and valid.
type Submission struct {
	// Key is the idempotency key: the CloudEvent id, or the Idempotency-Key header of a plain JSON
	// request; "" when a plain JSON request has none (it is then not idempotent).
	Key      string
	Feedback Feedback
	// claimed are the partner ids the body names (data.partnerId, a /partners/<id> source); each
	// must be the caller.
	claimed []string
}

// Decoders. Each returns ErrMalformed (wrapped) when the body is not JSON at all, and an
// *InvalidError listing every field error when it is JSON but not acceptable.

// DecodeJSON decodes an application/json body: one feedback object. key is the Idempotency-Key
// header (nil when absent).
func DecodeJSON(body []byte, key *string) (Submission, error) {
	if err := wellFormed(body); err != nil {
		return Submission{}, err
	}
	var list []FieldError
	e := errs{list: &list}
	var s Submission
	if key != nil {
		if msg := CheckKey(*key); msg != "" {
			e.add("Idempotency-Key", msg)
		}
		s.Key = *key
	}
	s.Feedback, s.claimed = decodeFeedback(body, e)
	return s, invalid(list)
}

// DecodeStructured decodes an application/cloudevents+json body: one structured CloudEvent whose
// data is the feedback.
func DecodeStructured(body []byte) (Submission, error) {
	if err := wellFormed(body); err != nil {
		return Submission{}, err
	}
	var list []FieldError
	s := decodeStructured(body, errs{list: &list})
	return s, invalid(list)
}

// DecodeBinary decodes a CloudEvents binary-mode request: attrs are the ce-* headers with the
// prefix removed and the name lower-cased (id, source, specversion, type, time, ...), body is the
// data (a JSON feedback object).
func DecodeBinary(attrs map[string]string, body []byte) (Submission, error) {
	if err := wellFormed(body); err != nil {
		return Submission{}, err
	}
	var list []FieldError
	e := errs{list: &list}
	ce := ceAttrs{present: map[string]bool{}}
	for k, v := range attrs {
		ce.present[k] = true
		switch k {
		case "specversion":
			ce.specversion = v
		case "id":
			ce.id = v
		case "source":
			ce.source = v
		case "type":
			ce.typ = v
		case "time":
			ce.time = v
		}
	}
	s := ce.submission(body, e, "ce-", "")
	return s, invalid(list)
}

// DecodeBatch decodes an application/cloudevents-batch+json body: a JSON array of 1 to MaxBatch
// structured CloudEvents with distinct ids.
func DecodeBatch(body []byte) ([]Submission, error) {
	if err := wellFormed(body); err != nil {
		return nil, err
	}
	var list []FieldError
	e := errs{list: &list}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		e.add("", "must be a JSON array of CloudEvents")
		return nil, invalid(list)
	}
	if len(items) == 0 || len(items) > MaxBatch {
		e.add("", fmt.Sprintf("must hold 1 to %d events (got %d)", MaxBatch, len(items)))
		return nil, invalid(list)
	}
	out := make([]Submission, len(items))
	seen := make(map[string]int, len(items))
	for i, raw := range items {
		ie := e.sub("[" + strconv.Itoa(i) + "].")
		out[i] = decodeStructured(raw, ie)
		if k := out[i].Key; k != "" {
			if j, dup := seen[k]; dup {
				ie.add("id", fmt.Sprintf("duplicates the id of event [%d]", j))
			} else {
				seen[k] = i
			}
		}
	}
	return out, invalid(list)
}

func wellFormed(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: the body is empty", ErrMalformed)
	}
	if !json.Valid(body) {
		// Decode again only to say where. Only the offset is reported: encoding/json's message
		// quotes a character of the body, and bodies hold comments, which are never logged.
		var v any
		err := json.Unmarshal(body, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%w: not valid JSON at byte %d", ErrMalformed, se.Offset)
		}
		return fmt.Errorf("%w: not valid JSON (ends early)", ErrMalformed)
	}
	return nil
}

func invalid(list []FieldError) error {
	if len(list) == 0 {
		return nil
	}
	return &InvalidError{Errors: list}
}

// ceAttrs are the context attributes this API reads.
type ceAttrs struct {
	specversion, id, source, typ, time string
	present                            map[string]bool
}

func decodeStructured(raw []byte, e errs) Submission {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		e.add("", "must be a CloudEvent (a JSON object)")
		return Submission{}
	}
	ce := ceAttrs{present: map[string]bool{}}
	for _, a := range []struct {
		name string
		dst  *string
	}{{"specversion", &ce.specversion}, {"id", &ce.id}, {"source", &ce.source}, {"type", &ce.typ}, {"time", &ce.time}} {
		v, ok := obj[a.name]
		if !ok || isNull(v) {
			continue
		}
		ce.present[a.name] = true
		if err := json.Unmarshal(v, a.dst); err != nil {
			e.add(a.name, "must be a string")
			ce.present[a.name+".bad"] = true
		}
	}
	if v, ok := obj["datacontenttype"]; ok && !isNull(v) {
		var ct string
		if err := json.Unmarshal(v, &ct); err != nil || !IsJSONMediaType(ct) {
			e.add("datacontenttype", "must be application/json (or absent)")
		}
	}
	if _, ok := obj["data_base64"]; ok {
		e.add("data_base64", "is not accepted: send the feedback as a JSON object in data")
	}
	data, ok := obj["data"]
	if !ok || isNull(data) {
		e.add("data", "is required (the feedback object)")
		data = nil
	}
	return ce.submission(data, e, "", "data.")
}

// submission checks the attributes and decodes data (nil when absent). attrPrefix is "ce-" in
// binary mode (attributes are headers there), dataPrefix "data." in structured mode.
func (ce ceAttrs) submission(data []byte, e errs, attrPrefix, dataPrefix string) Submission {
	var s Submission
	bad := func(name string) bool { return ce.present[name+".bad"] }
	switch {
	case bad("specversion"):
	case !ce.present["specversion"]:
		e.add(attrPrefix+"specversion", `is required ("1.0")`)
	case ce.specversion != "1.0":
		e.add(attrPrefix+"specversion", `must be "1.0"`)
	}
	switch {
	case bad("id"):
	case !ce.present["id"]:
		e.add(attrPrefix+"id", "is required")
	default:
		if msg := CheckKey(ce.id); msg != "" {
			e.add(attrPrefix+"id", msg)
		}
		s.Key = ce.id
	}
	switch {
	case bad("source"):
	case !ce.present["source"] || ce.source == "":
		e.add(attrPrefix+"source", "is required (a URI-reference, e.g. /partners/<partnerId>)")
	default:
		if _, err := url.Parse(ce.source); err != nil {
			e.add(attrPrefix+"source", "must be a URI-reference")
		} else if rest, ok := strings.CutPrefix(ce.source, "/partners/"); ok {
			id, _, _ := strings.Cut(rest, "/")
			s.claimed = append(s.claimed, id)
		}
	}
	kindOfType := ""
	switch {
	case bad("type"):
	case !ce.present["type"]:
		e.add(attrPrefix+"type", fmt.Sprintf("is required (%s or %s)", TypeProductSubmitted, TypeCustomerSubmitted))
	case ce.typ == TypeProductSubmitted:
		kindOfType = KindProduct
	case ce.typ == TypeCustomerSubmitted:
		kindOfType = KindCustomer
	default:
		e.add(attrPrefix+"type", fmt.Sprintf("must be %s or %s", TypeProductSubmitted, TypeCustomerSubmitted))
	}
	var eventTime *time.Time
	if ce.present["time"] && !bad("time") {
		t, err := time.Parse(time.RFC3339Nano, ce.time)
		if err != nil {
			e.add(attrPrefix+"time", "must be an RFC 3339 timestamp")
		} else {
			eventTime = &t
		}
	}
	if data == nil {
		return s
	}
	var f Feedback
	var claimed []string
	if kindOfType != "" {
		// The type says the kind; data.kind may repeat it but must not contradict it.
		f, claimed = decodeFeedbackKind(data, e.sub(dataPrefix), kindOfType, attrPrefix+"type")
	} else {
		f, claimed = decodeFeedbackKind(data, e.sub(dataPrefix), "", "")
	}
	if f.SubmittedAt == nil && eventTime != nil {
		f.SubmittedAt = eventTime
	}
	s.Feedback = f
	s.claimed = append(s.claimed, claimed...)
	return s
}

func decodeFeedback(raw []byte, e errs) (Feedback, []string) {
	return decodeFeedbackKind(raw, e, "", "")
}

// knownFields are the feedback fields in the order errors are reported.
var knownFields = []string{"kind", "partnerId", "productId", "orderId", "customerRef", "rating", "title", "comment", "locale", "submittedAt"}

// decodeFeedbackKind decodes a feedback object, reporting every field error. impliedKind is the kind
// the CloudEvent type implies ("" if none); typeField names that attribute for a mismatch.
func decodeFeedbackKind(raw []byte, e errs, impliedKind, typeField string) (Feedback, []string) {
	var f Feedback
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		e.add("", "must be a JSON object")
		return f, nil
	}
	bad := map[string]bool{}
	str := func(name string, dst *string) {
		v, ok := obj[name]
		if !ok || isNull(v) {
			return
		}
		if err := json.Unmarshal(v, dst); err != nil {
			e.add(name, "must be a string")
			bad[name] = true
		}
	}
	str("kind", &f.Kind)
	str("partnerId", &f.PartnerID)
	str("productId", &f.ProductID)
	str("orderId", &f.OrderID)
	str("customerRef", &f.CustomerRef)
	if v, ok := obj["rating"]; ok && !isNull(v) {
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil {
			e.add("rating", "must be an integer from 1 to 5")
			bad["rating"] = true
		} else {
			f.Rating = &n
		}
	}
	str("title", &f.Title)
	str("comment", &f.Comment)
	str("locale", &f.Locale)
	var submitted string
	str("submittedAt", &submitted)
	if submitted != "" {
		t, err := time.Parse(time.RFC3339Nano, submitted)
		if err != nil {
			e.add("submittedAt", "must be an RFC 3339 timestamp such as 2026-11-25T12:00:00Z")
			bad["submittedAt"] = true
		} else {
			f.SubmittedAt = &t
		}
	}
	var unknown []string
	for k := range obj {
		if !slices.Contains(knownFields, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		e.add(k, "is not a feedback field (known: "+strings.Join(knownFields, ", ")+")")
	}

	if impliedKind != "" {
		if f.Kind == "" && !bad["kind"] {
			f.Kind = impliedKind
		} else if f.Kind != impliedKind && !bad["kind"] {
			e.add("kind", fmt.Sprintf("%q contradicts the event type (%s)", f.Kind, typeField))
			bad["kind"] = true
		}
	}
	for _, ref := range []struct {
		name string
		v    string
	}{{"partnerId", f.PartnerID}, {"productId", f.ProductID}, {"orderId", f.OrderID}, {"customerRef", f.CustomerRef}} {
		if _, ok := obj[ref.name]; !ok || bad[ref.name] || isNull(obj[ref.name]) {
			continue
		}
		if msg := checkRef(ref.v); msg != "" {
			e.add(ref.name, msg)
			bad[ref.name] = true
		}
	}
	var rules []FieldError
	f.validate(errs{list: &rules})
	for _, fe := range rules {
		if !bad[fe.Field] && !(fe.Field == "productId" && bad["kind"]) && !(fe.Field == "orderId" && (bad["orderId"] || bad["customerRef"] || bad["kind"])) {
			e.add(fe.Field, fe.Message)
		}
	}
	var claimed []string
	if f.PartnerID != "" && !bad["partnerId"] {
		claimed = append(claimed, f.PartnerID)
	}
	return f, claimed
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// IsJSONMediaType reports whether a content type (with or without parameters) is application/json
// or a +json type, and any charset it names is UTF-8.
func IsJSONMediaType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
