package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// The product decoder reads every document of every change-feed batch, so it does not build a map
// of all members (Cosmos DB documents carry as many system and internal fields as public ones): one
// strict pass validates the whole document as JSON (RFC 8259, exactly what encoding/json accepts)
// and keeps the raw value of the few members a product needs. Keys match exactly (encoding/json
// matches struct fields case-insensitively, which would let an internal "Price" pass for "price");
// a repeated key keeps its last value, as encoding/json does.

// Members a product document is read from.
const (
	fID = iota
	fName
	fCategory
	fPrice
	fCurrency
	fStock
	fDescription
	fImageURL
	fIsDeleted
	fETag
	fLSN
	fTS
	nFields
)

func fieldIndex(key string) int {
	switch key {
	case "id":
		return fID
	case "name":
		return fName
	case "category":
		return fCategory
	case "price":
		return fPrice
	case "currency":
		return fCurrency
	case "stock":
		return fStock
	case "description":
		return fDescription
	case "imageUrl":
		return fImageURL
	case "isDeleted":
		return fIsDeleted
	case "_etag":
		return fETag
	case "_lsn":
		return fLSN
	case "_ts":
		return fTS
	}
	return -1
}

var errSyntax = errors.New("invalid JSON")

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

type scanner struct {
	b []byte
	i int
}

// scanMembers validates doc (a JSON object) and returns the raw values of the product members.
func scanMembers(doc []byte) (vals [nFields][]byte, err error) {
	s := scanner{b: doc}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return vals, errSyntax
	}
	err = s.object(0, func(key []byte, esc bool) error {
		k := string(key) // no allocation: only compared
		if esc {
			var unq string
			if json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &unq) != nil {
				return errSyntax
			}
			k = unq
		}
		start := s.skipWS()
		if err := s.value(1); err != nil {
			return err
		}
		if f := fieldIndex(k); f >= 0 {
			vals[f] = s.b[start:s.i]
		}
		return nil
	})
	if err != nil {
		return vals, err
	}
	s.ws()
	if s.i != len(s.b) {
		return vals, errSyntax
	}
	return vals, nil
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) skipWS() int {
	s.ws()
	return s.i
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// str reads a string and returns its content between the quotes and whether it has escapes.
func (s *scanner) str() ([]byte, bool, error) {
	if s.peek() != '"' {
		return nil, false, errSyntax
	}
	start := s.i + 1
	esc := false
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], esc, nil
		case c == '\\':
			esc = true
			if j+1 >= len(s.b) {
				return nil, false, errSyntax
			}
			switch s.b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+5 >= len(s.b) || !isHex(s.b[j+2]) || !isHex(s.b[j+3]) || !isHex(s.b[j+4]) || !isHex(s.b[j+5]) {
					return nil, false, errSyntax
				}
				j += 5
			default:
				return nil, false, errSyntax
			}
		case c < 0x20:
			return nil, false, errSyntax
		}
	}
	return nil, false, errSyntax
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// value skips one JSON value.
func (s *scanner) value(depth int) error {
	if depth > maxDepth {
		return errSyntax
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{':
		return s.object(depth, func([]byte, bool) error { return s.value(depth + 1) })
	case c == '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.value(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return errSyntax
			}
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return errSyntax
}

func (s *scanner) lit(w string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return errSyntax
	}
	s.i += len(w)
	return nil
}

func (s *scanner) number() error {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return errSyntax
		}
	}
	s.i = i
	return nil
}

// object reads an object, calling member for each key with the scanner before the value; member
// must consume the value.
func (s *scanner) object(depth int, member func(key []byte, esc bool) error) error {
	if s.peek() != '{' {
		return errSyntax
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, esc, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return errSyntax
		}
		s.i++
		if err := member(key, esc); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// unquote returns the string a raw JSON string value holds, decoding escapes and replacing invalid
// UTF-8 exactly as encoding/json does.
func unquote(raw []byte) (string, bool) {
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}
