// Package protocol owns the Azure Functions custom-handler protocol: the JSON envelope the host POSTs
// to /<FunctionName>, the per-binding decoders (double-encoded strings, Event Hubs batches, Cosmos DB
// change-feed documents, timers, HTTP requests), the reply the host expects, and the adapters that
// turn a typed Go function or an ordinary http.Handler into an endpoint the host can call.
//
// Nothing else in the repository decodes envelopes. The rules implemented here are those of the
// host's source (azure-functions-host DefaultHttpWorkerService and ScriptInvocationContextExtensions):
//   - string values are JSON-encoded twice, Metadata numbers and arrays arrive as strings holding JSON;
//   - DateTime values lose their zone and sub-second precision;
//   - the reply must be a JSON object with Content-Type application/json, never empty and never null,
//     and any non-2xx status fails the invocation (its Outputs and Logs are then discarded).
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Header names the host sets on every invocation request.
const (
	HeaderInvocationID = "X-Azure-Functions-InvocationId"
	HeaderHostVersion  = "X-Azure-Functions-HostVersion"
)

// ErrMalformed marks an envelope or binding value that does not have the shape the host sends.
var ErrMalformed = errors.New("malformed invocation request")

// Request is the envelope of one invocation: one Data entry per input binding (trigger first) and the
// trigger's binding metadata. Values are kept raw; decode only what the function needs.
type Request struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// Response is the reply to the host. Outputs keys must be spelled exactly as the output bindings in
// function.json (the host matches them case-sensitively).
type Response struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// DecodeRequest parses an envelope body. Data and Metadata values are kept raw (sub-slices of body,
// which must not be modified while the Request is in use) and decoded on demand by the binding
// decoders; values that are never needed (most of the metadata) are skipped, not parsed.
func DecodeRequest(body []byte) (*Request, error) {
	req := Request{}
	end, err := eachMember(body, 0, func(key, val []byte) error {
		switch {
		case bytes.EqualFold(key, []byte("Data")):
			if string(val) == "null" {
				return nil
			}
			req.Data = map[string]json.RawMessage{}
			_, err := eachMember(val, 0, func(k, v []byte) error {
				req.Data[string(k)] = v
				return nil
			})
			return err
		case bytes.EqualFold(key, []byte("Metadata")):
			if string(val) == "null" {
				return nil
			}
			req.Metadata = make(map[string]json.RawMessage, 16)
			_, err := eachMember(val, 0, func(k, v []byte) error {
				req.Metadata[string(k)] = v
				return nil
			})
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if skipWS(body, end) != len(body) {
		return nil, fmt.Errorf("%w: data after the envelope object", ErrMalformed)
	}
	if req.Data == nil {
		return nil, fmt.Errorf("%w: no Data", ErrMalformed)
	}
	return &req, nil
}

// Binding returns the raw Data value of the named input binding.
func (r *Request) Binding(name string) (json.RawMessage, error) {
	v, ok := r.Data[name]
	if !ok {
		return nil, fmt.Errorf("%w: no Data.%s", ErrMalformed, name)
	}
	return v, nil
}

// DecodeString undoes the host's double encoding of a string value: the wire holds a JSON string
// whose content is the original string JSON-encoded again. A value that is a JSON string whose
// content is not itself a JSON string (as older hosts and the docs show) is returned as is.
func DecodeString(raw json.RawMessage) (string, error) {
	var outer string
	if err := json.Unmarshal(raw, &outer); err != nil {
		return "", fmt.Errorf("%w: want a JSON string: %v", ErrMalformed, err)
	}
	if len(outer) >= 2 && outer[0] == '"' {
		var inner string
		if err := json.Unmarshal([]byte(outer), &inner); err == nil {
			return inner, nil
		}
	}
	return outer, nil
}

// MetadataString returns a Metadata value that the host wrote as a (double-encoded) string; absent
// keys return "" and false.
func (r *Request) MetadataString(key string) (string, bool, error) {
	raw, ok := r.Metadata[key]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	s, err := DecodeString(raw)
	if err != nil {
		return "", false, fmt.Errorf("Metadata.%s: %w", key, err)
	}
	return s, true, nil
}

// MetadataInt returns a Metadata number, which the host sends as a string of digits.
func (r *Request) MetadataInt(key string) (int64, bool, error) {
	s, ok, err := r.MetadataString(key)
	if err != nil || !ok {
		return 0, ok, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: Metadata.%s: %v", ErrMalformed, key, err)
	}
	return n, true, nil
}

// MetadataArray decodes a Metadata array value (sent as a string holding a JSON array, or, by an
// older host, as the array itself) into v.
func (r *Request) MetadataArray(key string, v any) (bool, error) {
	raw, ok := r.Metadata[key]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	arr, err := stringHoldingJSON(raw)
	if err == nil {
		err = json.Unmarshal(arr, v)
	}
	if err != nil {
		return false, fmt.Errorf("%w: Metadata.%s: %v", ErrMalformed, key, err)
	}
	return true, nil
}

// ParseHostTime parses the host's date forms: RFC 3339 with a zone, or the zone-less
// "2006-01-02T15:04:05[.fffffff]" that .NET writes for DateTime values of Unspecified or UTC kind.
// Zone-less times are UTC (the host runs in UTC and Event Hubs enqueued times are UTC).
func ParseHostTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q", ErrMalformed, s)
	}
	return t, nil
}

// RetryContext is the host's retry state, present when the function has a retry policy.
type RetryContext struct {
	RetryCount    int             `json:"RetryCount"`
	MaxRetryCount int             `json:"MaxRetryCount"`
	Exception     json.RawMessage `json:"Exception,omitempty"`
}

// Retry returns the invocation's RetryContext, or nil when the function runs without a retry policy.
func (r *Request) Retry() (*RetryContext, error) {
	raw, ok := r.Metadata["RetryContext"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var rc RetryContext
	if err := json.Unmarshal(raw, &rc); err != nil {
		// Some hosts may stringify it like other metadata.
		s, err2 := DecodeString(raw)
		if err2 != nil || json.Unmarshal([]byte(s), &rc) != nil {
			return nil, fmt.Errorf("%w: Metadata.RetryContext: %v", ErrMalformed, err)
		}
	}
	return &rc, nil
}

// LastAttempt reports whether a failure now would be final: the host will not invoke again with this
// batch. Without a retry policy every attempt is the last one; MaxRetryCount -1 retries forever.
func (rc *RetryContext) LastAttempt() bool {
	if rc == nil {
		return true
	}
	if rc.MaxRetryCount < 0 {
		return false
	}
	return rc.RetryCount >= rc.MaxRetryCount
}
