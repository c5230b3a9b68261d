package events

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzStructuredScan holds the hand-written scanner to encoding/json: the same bodies are valid JSON,
// and the attributes read are the same strings.
func FuzzStructuredScan(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"e1","source":"/web","type":"t","time":"2026-11-25T08:59:58Z","data":{"userId":"u\u00e91","productId":"p1","n":[1,2.5e3,-0,true,null]}}`))
	f.Add([]byte(`{"specversion":1,"data":"x"}`))
	f.Add([]byte(`{"a":tru}`))
	f.Add([]byte(`{"id":"\ud83d\ude00 \ud800"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 || body[0] != '{' {
			return
		}
		var s structured
		err := s.scan(body)
		valid := json.Valid(body)
		if valid == errors.Is(err, ErrNotJSON) {
			t.Fatalf("json.Valid=%v but scan err=%v for %q", valid, err, body)
		}
		if err != nil {
			return
		}
		var want struct {
			SpecVersion any `json:"specversion"`
			ID          any `json:"id"`
		}
		// encoding/json matches keys case-insensitively; the CloudEvents attributes are lowercase.
		var m map[string]json.RawMessage
		json.Unmarshal(body, &m)
		for k, dst := range map[string]*any{"specversion": &want.SpecVersion, "id": &want.ID} {
			if raw, ok := m[k]; ok {
				json.Unmarshal(raw, dst)
			}
		}
		if w, ok := want.ID.(string); ok && w != s.ID {
			t.Fatalf("id %q, encoding/json %q", s.ID, w)
		}
		if w, ok := want.SpecVersion.(string); ok && w != s.SpecVersion {
			t.Fatalf("specversion %q, encoding/json %q", s.SpecVersion, w)
		}
	})
}
