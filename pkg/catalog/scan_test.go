package catalog

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzScanMembers checks the product scanner against encoding/json: it accepts exactly the JSON
// objects encoding/json accepts, and picks the same raw value for each product member (the last
// one when a key repeats).
func FuzzScanMembers(f *testing.F) {
	for _, s := range []string{
		`{"id":"p-1","name":"x","price":1.5e3,"stock":0,"_lsn":7,"nested":{"a":[1,2,{"b":null}]},"id":"p-2"}`,
		`{"\u0069d":"escaped key","na\"me":1,"s":"\ud83d\ude00 \u00e9"}`,
		`  {"price": -0.0E+2 , "currency" : "EUR" }  `,
		`{"id":"\xff\xfe"}`, `{"a":01}`, `{"a":1.}`, `{"a":"\x01"}`, `{"a" 1}`, `{"a":1,}`, `[{"id":"x"}]`, `{}`, `{`, `"x"`,
		`{"a":tru}`, `{"a":[1 2]}`, `{"a":{"b":}}`, `{"id":"p"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		vals, err := scanMembers(doc)
		var m map[string]json.RawMessage
		jerr := json.Unmarshal(doc, &m)
		isObject := jerr == nil && m != nil
		if (err == nil) != isObject {
			// encoding/json also accepts `null` into a map (leaving it nil); that is not an object.
			t.Fatalf("scanner err %v, encoding/json err %v (map nil: %v) for %q", err, jerr, m == nil, doc)
		}
		if err != nil {
			return
		}
		for key, want := range m {
			i := fieldIndex(key)
			if i < 0 {
				continue
			}
			if !bytes.Equal(vals[i], want) {
				t.Fatalf("member %q: scanner %q, encoding/json %q in %q", key, vals[i], want, doc)
			}
		}
		for i := range nFields {
			if vals[i] != nil {
				found := false
				for key := range m {
					if fieldIndex(key) == i {
						found = true
					}
				}
				if !found {
					t.Fatalf("scanner found member %d that encoding/json did not in %q", i, doc)
				}
			}
		}
	})
}

func TestUnquote(t *testing.T) {
	for raw, want := range map[string]string{
		`"plain"`:            "plain",
		`"esc\"aped\n"`:      "esc\"aped\n",
		`"\u00e9t\u00e9"`:    "été",
		"\"bad \xff utf8\"":  "bad \uFFFD utf8",
		`""`:                 "",
		`"\ud800 lone half"`: "\uFFFD lone half",
	} {
		got, ok := unquote([]byte(raw))
		if !ok || got != want {
			t.Errorf("unquote(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}
