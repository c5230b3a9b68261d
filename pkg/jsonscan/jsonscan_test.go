package jsonscan_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/contoso/eventpipeline/pkg/jsonscan"
)

func valid(b []byte) bool {
	s := jsonscan.New(b)
	return s.Value() == nil && s.End() == nil
}

func TestValidity(t *testing.T) {
	for _, ok := range []string{`{}`, `[]`, `0`, `-0.5e+10`, `"a\u00e9\n"`, ` {"a":[1,{"b":null}],"c":true} `, `"\ud83d\ude00"`} {
		if !valid([]byte(ok)) {
			t.Errorf("%s rejected", ok)
		}
	}
	for _, bad := range []string{``, `{`, `{"a"}`, `{"a":tru}`, `01`, `1.`, `-`, `"\x"`, "\"a\x01\"", `[1,]`, `{"a":1,}`, `{} x`, `"\u12G4"`} {
		if valid([]byte(bad)) {
			t.Errorf("%q accepted", bad)
		}
	}
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	if valid([]byte(deep)) {
		t.Error("nesting beyond encoding/json's limit accepted")
	}
}

func TestObjectAndText(t *testing.T) {
	s := jsonscan.New([]byte(`{"id":"p\u00e9","n":1,"id":"last"}`))
	got := map[string]string{}
	err := s.Object(func(key []byte, esc bool) error {
		if s.Peek() == '"' {
			v, err := s.Text()
			got[string(key)] = v
			return err
		}
		return s.Value()
	})
	if err != nil || got["id"] != "last" || s.End() != nil {
		t.Fatalf("got %v, %v", got, err)
	}
	if err := jsonscan.New([]byte(`[1]`)).Object(nil); !errors.Is(err, jsonscan.ErrSyntax) {
		t.Fatalf("array as object: %v", err)
	}
}

// FuzzValid holds the scanner to encoding/json: the same texts are valid, and strings read the same.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,-0,true,null,"x\u00e9\\"]}`, `"\ud800"`, `{"a":tru}`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := valid(b), json.Valid(b); got != want {
			t.Fatalf("valid(%q) = %v, encoding/json says %v", b, got, want)
		}
		if len(b) > 0 && b[0] == '"' && json.Valid(b) {
			var want string
			json.Unmarshal(b, &want)
			got, err := jsonscan.New(b).Text()
			if err != nil || got != want {
				t.Fatalf("Text(%q) = %q, %v; want %q", b, got, err, want)
			}
		}
	})
}
