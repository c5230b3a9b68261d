package events

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/contoso/eventpipeline/pkg/jsonscan"
)

// Click is one clickstream CloudEvent, decoded to what the consumers need.
type Click struct {
	ID        string
	Source    string
	Type      string
	Time      time.Time
	UserID    string
	SessionID string
	ProductID string
	Category  string
	Page      string
}

// Viewer is the key a click is attributed to: the signed-in user, else the anonymous session.
func (c *Click) Viewer() string {
	if c.UserID != "" {
		return c.UserID
	}
	return c.SessionID
}

// Reasons a click cannot be used. They are poison: a retry cannot fix them, so consumers
// dead-letter the event with the reason and carry on.
var (
	ErrNotJSON       = errors.New("body is not JSON")
	ErrNotCloudEvent = errors.New("not a CloudEvent")
	ErrNoProduct     = errors.New("data has no productId")
	ErrNoViewer      = errors.New("data has neither userId nor sessionId")
	ErrBadData       = errors.New("data is not a JSON object")
	// ErrOtherType is not poison: the event is a valid CloudEvent of a type clickstream consumers do
	// not handle, and is skipped.
	ErrOtherType = errors.New("not a clickstream event type")
)

type clickData struct {
	UserID, SessionID, ProductID, Category, Page string
}

type structured struct {
	SpecVersion, ID, Source, Type, Time, DataContentType, DataBase64 string
	Data                                                             []byte
}

// Properties gives a binary-mode event's application properties; it is called only when the body
// is not a structured CloudEvent, so structured events never pay for decoding them.
type Properties func() (map[string]any, error)

// DecodeClick decodes a click from an Event Hubs event body. Structured mode (a JSON body with
// "specversion") and binary mode (attributes in the application properties under the AMQP binding's
// "cloudEvents:" or "cloudEvents_" prefix, data in the body) are both accepted. When the event has no
// time attribute, fallback (the enqueued time) is used. Errors wrap one of the reasons above.
//
// The body is read with a strict hand-written scanner rather than encoding/json: this runs for every
// click, and the scanner validates the JSON while copying out only the few members a click needs.
func DecodeClick(body []byte, props Properties, fallback time.Time) (Click, error) {
	body = trimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		var s structured
		if err := s.scan(body); err != nil {
			return Click{}, err
		}
		if s.SpecVersion != "" {
			data := s.Data
			if len(data) == 0 && s.DataBase64 != "" {
				b, err := base64.StdEncoding.DecodeString(s.DataBase64)
				if err != nil {
					return Click{}, fmt.Errorf("%w: data_base64: %v", ErrBadData, err)
				}
				data = b
			}
			return finish(s.SpecVersion, s.ID, s.Source, s.Type, s.Time, data, fallback)
		}
	}
	if props != nil {
		p, err := props()
		if err != nil {
			return Click{}, fmt.Errorf("%w: %v", ErrNotCloudEvent, err)
		}
		if attr := binaryAttrs(p); attr != nil {
			return finish(attr["specversion"], attr["id"], attr["source"], attr["type"], attr["time"], body, fallback)
		}
	}
	if !json.Valid(body) {
		return Click{}, ErrNotJSON
	}
	return Click{}, fmt.Errorf("%w: no specversion in the body or the application properties", ErrNotCloudEvent)
}

// scan reads a structured CloudEvent's attributes. A body that is not valid JSON is ErrNotJSON; an
// attribute that is not a string is ErrNotCloudEvent.
func (s *structured) scan(body []byte) error {
	sc := jsonscan.New(body)
	attr := func(dst *string, name string) error {
		if sc.Peek() == 'n' {
			return sc.Literal("null")
		}
		if sc.Peek() != '"' {
			if sc.Value() != nil {
				return jsonscan.ErrSyntax
			}
			return fmt.Errorf("%w: attribute %s is not a string", ErrNotCloudEvent, name)
		}
		v, err := sc.Text()
		*dst = v
		return err
	}
	var attrErr error
	err := sc.Object(func(key []byte, esc bool) error {
		var err error
		switch string(key) {
		case "specversion":
			err = attr(&s.SpecVersion, "specversion")
		case "id":
			err = attr(&s.ID, "id")
		case "source":
			err = attr(&s.Source, "source")
		case "type":
			err = attr(&s.Type, "type")
		case "time":
			err = attr(&s.Time, "time")
		case "datacontenttype":
			err = attr(&s.DataContentType, "datacontenttype")
		case "data_base64":
			err = attr(&s.DataBase64, "data_base64")
		case "data":
			sc.WS()
			start := sc.I
			if err := sc.Value(); err != nil {
				return err
			}
			if v := body[start:sc.I]; string(v) != "null" {
				s.Data = v
			}
			return nil
		default:
			return sc.Value()
		}
		if err != nil && !errors.Is(err, jsonscan.ErrSyntax) {
			// Keep scanning so that invalid JSON later in the body is still reported as such.
			if attrErr == nil {
				attrErr = err
			}
			return nil
		}
		return err
	})
	if err == nil {
		err = sc.End()
	}
	if err != nil {
		return fmt.Errorf("%w: %v at offset %d", ErrNotJSON, err, sc.I)
	}
	return attrErr
}

// scanData reads the click fields of a data object.
func scanData(data []byte) (clickData, error) {
	var d clickData
	sc := jsonscan.New(data)
	field := func(dst *string, name string) error {
		switch sc.Peek() {
		case 'n':
			return sc.Literal("null")
		case '"':
			v, err := sc.Text()
			*dst = v
			return err
		}
		if err := sc.Value(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s is not a string", ErrBadData, name)
	}
	var fieldErr error
	err := sc.Object(func(key []byte, esc bool) error {
		var err error
		switch string(key) {
		case "userId":
			err = field(&d.UserID, "userId")
		case "sessionId":
			err = field(&d.SessionID, "sessionId")
		case "productId":
			err = field(&d.ProductID, "productId")
		case "category":
			err = field(&d.Category, "category")
		case "page":
			err = field(&d.Page, "page")
		default:
			return sc.Value()
		}
		if err != nil && !errors.Is(err, jsonscan.ErrSyntax) {
			if fieldErr == nil {
				fieldErr = err
			}
			return nil
		}
		return err
	})
	if err == nil {
		err = sc.End()
	}
	if err != nil {
		return d, fmt.Errorf("%w: %v", ErrBadData, err)
	}
	return d, fieldErr
}

func finish(specversion, id, source, typ, ts string, data []byte, fallback time.Time) (Click, error) {
	if specversion != "1.0" {
		return Click{}, fmt.Errorf("%w: specversion %q", ErrNotCloudEvent, specversion)
	}
	if id == "" || source == "" || typ == "" {
		return Click{}, fmt.Errorf("%w: id, source and type are required", ErrNotCloudEvent)
	}
	c := Click{ID: id, Source: source, Type: typ, Time: fallback}
	if !IsClickType(typ) {
		return c, ErrOtherType
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return Click{}, fmt.Errorf("%w: time %q is not RFC 3339", ErrNotCloudEvent, ts)
		}
		c.Time = t.UTC()
	}
	if c.Time.IsZero() {
		return Click{}, fmt.Errorf("%w: no time", ErrNotCloudEvent)
	}
	data = trimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return Click{}, ErrBadData
	}
	d, err := scanData(data)
	if err != nil {
		return Click{}, err
	}
	c.UserID, c.SessionID, c.ProductID, c.Category, c.Page = d.UserID, d.SessionID, d.ProductID, d.Category, d.Page
	if c.ProductID == "" {
		return Click{}, ErrNoProduct
	}
	if c.UserID == "" && c.SessionID == "" {
		return Click{}, ErrNoViewer
	}
	return c, nil
}

// binaryAttrs extracts CloudEvents attributes from AMQP application properties ("cloudEvents:id" or
// "cloudEvents_id"); nil when there is no specversion.
func binaryAttrs(p map[string]any) map[string]string {
	var attrs map[string]string
	for k, v := range p {
		var name string
		switch {
		case strings.HasPrefix(k, "cloudEvents:"):
			name = k[len("cloudEvents:"):]
		case strings.HasPrefix(k, "cloudEvents_"):
			name = k[len("cloudEvents_"):]
		default:
			continue
		}
		if attrs == nil {
			attrs = make(map[string]string, 8)
		}
		switch x := v.(type) {
		case string:
			attrs[name] = x
		default:
			attrs[name] = fmt.Sprint(x)
		}
	}
	if attrs["specversion"] == "" {
		return nil
	}
	return attrs
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
