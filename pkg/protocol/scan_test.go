package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendUnquoted(t *testing.T) {
	for _, s := range []string{`""`, `"abc"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u4e2d\ud83d\ude00"`, `"\"[\\\"x\\\"]\""`, `"lone \ud800 surrogate"`} {
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		got, err := appendUnquoted(nil, []byte(s))
		if err != nil || string(got) != want {
			t.Errorf("appendUnquoted(%s) = %q, %v; want %q", s, got, err, want)
		}
	}
	for _, bad := range []string{`"abc`, `abc"`, `"\x"`, `"\u12"`, `"\`} {
		if _, err := appendUnquoted(nil, []byte(bad)); err == nil {
			t.Errorf("appendUnquoted(%s) accepted", bad)
		}
	}
}

func TestFastTime(t *testing.T) {
	for _, s := range []string{"2024-10-24T21:32:17", "2024-10-24T21:32:17.123", "2024-10-24T21:32:17.1234567", "2024-10-24T21:32:17Z", "2024-02-29T00:00:00"} {
		want, err := ParseHostTime(s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := fastTime([]byte(s))
		if !ok || !got.Equal(want) {
			t.Errorf("fastTime(%s) = %v %v, want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"2024-10-24T21:32:17+02:00", "2023-02-29T00:00:00", "2024-13-01T00:00:00", "x"} {
		if _, ok := fastTime([]byte(s)); ok {
			t.Errorf("fastTime(%s) accepted", s)
		}
	}
	if got, _ := parseTimeValue([]byte(`"2024-10-24T23:32:17.5+02:00"`)); !got.Equal(time.Date(2024, 10, 24, 21, 32, 17, 5e8, time.UTC)) {
		t.Errorf("offset form = %v", got)
	}
}

// FuzzScanner checks the hand-written scanner against encoding/json: whatever encoding/json accepts
// as an object, eachMember must split into the same members, and strings must unquote identically.
func FuzzScanner(f *testing.F) {
	f.Add([]byte(`{"Data":{"events":"[\"{\\\"a\\\":1}\"]"},"Metadata":{"SequenceNumberArray":"[1]","x":[1,{"y":"}"}]}}`))
	f.Add([]byte(`{"a":"\u00e9\\","b":null,"c":true,"d":-1.5e3,"e":{},"f":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var want map[string]json.RawMessage
		if json.Unmarshal(b, &want) != nil || want == nil {
			return
		}
		got := map[string][]byte{}
		end, err := eachMember(b, 0, func(k, v []byte) error {
			if bytes.IndexByte(k, '\\') < 0 && utf8.Valid(k) {
				got[string(k)] = v
			}
			return nil
		})
		if err != nil || skipWS(b, end) != len(b) {
			t.Fatalf("eachMember rejected valid JSON %q: %v", b, err)
		}
		for k, v := range got {
			var a, c any
			if json.Unmarshal(want[k], &a) != nil || json.Unmarshal(v, &c) != nil {
				t.Fatalf("member %q: %s vs %s", k, want[k], v)
			}
			wa, _ := json.Marshal(a)
			wc, _ := json.Marshal(c)
			if !bytes.Equal(wa, wc) {
				t.Fatalf("member %q: %s vs %s", k, want[k], v)
			}
			if len(v) > 0 && v[0] == '"' {
				var s string
				json.Unmarshal(v, &s)
				u, err := appendUnquoted(nil, v)
				if err != nil || string(u) != s && bytes.ContainsRune([]byte(s), 0xfffd) == false {
					t.Fatalf("unquote %s = %q %v, want %q", v, u, err, s)
				}
			}
		}
	})
}
