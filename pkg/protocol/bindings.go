package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func decodeBase64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(s)
}

// DecodeCosmosDocuments decodes a cosmosDBTrigger (extension v4) batch. The change feed's documents
// arrive encoded three times: Data.<binding> is a JSON string whose content is a JSON string literal
// whose content is the compact JSON array of documents. The returned documents share one buffer.
func DecodeCosmosDocuments(req *Request, binding string) ([]json.RawMessage, error) {
	raw, err := req.Binding(binding)
	if err != nil {
		return nil, err
	}
	cur := []byte(raw)
	// Peel string layers until the array appears (two in practice; tolerate fewer).
	for range 4 {
		i := skipWS(cur, 0)
		if i < len(cur) && cur[i] == '[' {
			docs := make([]json.RawMessage, 0, 16)
			end, err := eachElement(cur, i, func(_ int, v []byte) error {
				if len(v) == 0 || v[0] != '{' {
					return fmt.Errorf("element is not a document")
				}
				docs = append(docs, v)
				return nil
			})
			if err == nil && skipWS(cur, end) != len(cur) {
				err = fmt.Errorf("data after the array")
			}
			if err != nil {
				return nil, fmt.Errorf("%w: Data.%s: %v", ErrMalformed, binding, err)
			}
			return docs, nil
		}
		if i >= len(cur) || cur[i] != '"' {
			return nil, fmt.Errorf("%w: Data.%s: want documents array", ErrMalformed, binding)
		}
		if cur, err = appendUnquoted(make([]byte, 0, len(cur)), bytes.TrimRight(cur[i:], " \t\r\n")); err != nil {
			return nil, fmt.Errorf("%w: Data.%s: %v", ErrMalformed, binding, err)
		}
	}
	return nil, fmt.Errorf("%w: Data.%s: too deeply encoded", ErrMalformed, binding)
}

// TimerInfo is the timerTrigger value.
type TimerInfo struct {
	Schedule struct {
		AdjustForDST bool `json:"AdjustForDST"`
	} `json:"Schedule"`
	ScheduleStatus *struct {
		Last        string `json:"Last"`
		Next        string `json:"Next"`
		LastUpdated string `json:"LastUpdated"`
	} `json:"ScheduleStatus"`
	IsPastDue bool `json:"IsPastDue"`
}

// LastRun returns the previous scheduled run, when the schedule monitor knows it (the zero time on a
// first run or with useMonitor false).
func (t *TimerInfo) LastRun() time.Time {
	if t.ScheduleStatus == nil {
		return time.Time{}
	}
	last, err := ParseHostTime(t.ScheduleStatus.Last)
	if err != nil || last.Year() < 2000 {
		return time.Time{}
	}
	return last
}

// DecodeTimer decodes a timerTrigger value (a nested object).
func DecodeTimer(req *Request, binding string) (*TimerInfo, error) {
	raw, err := req.Binding(binding)
	if err != nil {
		return nil, err
	}
	var ti TimerInfo
	if err := json.Unmarshal(raw, &ti); err != nil {
		// Very old hosts sent it as a string.
		s, err2 := DecodeString(raw)
		if err2 != nil || json.Unmarshal([]byte(s), &ti) != nil {
			return nil, fmt.Errorf("%w: Data.%s: %v", ErrMalformed, binding, err)
		}
	}
	return &ti, nil
}

// DecodeObject decodes a binding value that is an object, or a (possibly double-encoded) string
// holding one (the eventGridTrigger sends either, depending on the extension version).
func DecodeObject(req *Request, binding string, v any) error {
	raw, err := req.Binding(binding)
	if err != nil {
		return err
	}
	cur := []byte(raw)
	for range 3 {
		if len(cur) > 0 && (cur[0] == '{' || cur[0] == '[') {
			if err := json.Unmarshal(cur, v); err != nil {
				return fmt.Errorf("%w: Data.%s: %v", ErrMalformed, binding, err)
			}
			return nil
		}
		var s string
		if err := json.Unmarshal(cur, &s); err != nil {
			return fmt.Errorf("%w: Data.%s: %v", ErrMalformed, binding, err)
		}
		cur = []byte(s)
	}
	return fmt.Errorf("%w: Data.%s: not an object", ErrMalformed, binding)
}
