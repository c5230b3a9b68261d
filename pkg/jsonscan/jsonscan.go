// Package jsonscan is a strict, allocation-light JSON scanner for hot paths that need a few members
// of each document (clicks, product documents): one pass validates the whole text as JSON (RFC 8259,
// what encoding/json accepts, to a nesting depth of 10,000) while the caller copies out only what it
// needs. Keys match exactly (encoding/json matches struct fields case-insensitively).
package jsonscan

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// ErrSyntax is returned for input that is not valid JSON.
var ErrSyntax = errors.New("invalid JSON")

// Scanner reads one JSON text. B is the input and I the current offset; methods advance I past what
// they read.
type Scanner struct {
	B []byte
	I int
}

// New returns a Scanner over b.
func New(b []byte) *Scanner { return &Scanner{B: b} }

// WS skips whitespace.
func (s *Scanner) WS() {
	for s.I < len(s.B) {
		switch s.B[s.I] {
		case ' ', '\t', '\n', '\r':
			s.I++
		default:
			return
		}
	}
}

// Peek returns the next non-space byte (0 at the end) without consuming it.
func (s *Scanner) Peek() byte {
	s.WS()
	if s.I >= len(s.B) {
		return 0
	}
	return s.B[s.I]
}

// String reads a string and returns its raw content (between the quotes) and whether it has escapes.
func (s *Scanner) String() ([]byte, bool, error) {
	if s.Peek() != '"' {
		return nil, false, ErrSyntax
	}
	start := s.I + 1
	esc := false
	for j := start; j < len(s.B); j++ {
		c := s.B[j]
		switch {
		case c == '"':
			s.I = j + 1
			return s.B[start:j], esc, nil
		case c == '\\':
			esc = true
			if j+1 >= len(s.B) {
				return nil, false, ErrSyntax
			}
			switch s.B[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+5 >= len(s.B) || !isHex(s.B[j+2]) || !isHex(s.B[j+3]) || !isHex(s.B[j+4]) || !isHex(s.B[j+5]) {
					return nil, false, ErrSyntax
				}
				j += 5
			default:
				return nil, false, ErrSyntax
			}
		case c < 0x20:
			return nil, false, ErrSyntax
		}
	}
	return nil, false, ErrSyntax
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Text reads a string value as a Go string, resolving escapes (rare in click attributes).
func (s *Scanner) Text() (string, error) {
	raw, esc, err := s.String()
	if err != nil {
		return "", err
	}
	if !esc {
		if !utf8.Valid(raw) {
			return replaceInvalid(raw), nil
		}
		return string(raw), nil
	}
	return Unescape(raw)
}

// Value skips one JSON value, validating it.
func (s *Scanner) Value() error { return s.value(1) }

func (s *Scanner) value(depth int) error {
	if depth > 10000 {
		return ErrSyntax
	}
	switch c := s.Peek(); {
	case c == '"':
		_, _, err := s.String()
		return err
	case c == '{':
		return s.object(depth, func([]byte, bool) error { return s.value(depth + 1) })
	case c == '[':
		s.I++
		if s.Peek() == ']' {
			s.I++
			return nil
		}
		for {
			if err := s.value(depth + 1); err != nil {
				return err
			}
			switch s.Peek() {
			case ',':
				s.I++
			case ']':
				s.I++
				return nil
			default:
				return ErrSyntax
			}
		}
	case c == 't':
		return s.Literal("true")
	case c == 'f':
		return s.Literal("false")
	case c == 'n':
		return s.Literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.Number()
	}
	return ErrSyntax
}

// Literal consumes the literal w (true, false, null).
func (s *Scanner) Literal(w string) error {
	if !bytes.HasPrefix(s.B[s.I:], []byte(w)) {
		return ErrSyntax
	}
	s.I += len(w)
	return nil
}

// Number consumes a JSON number.
func (s *Scanner) Number() error {
	b, i := s.B, s.I
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
		return ErrSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return ErrSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return ErrSyntax
		}
	}
	s.I = i
	return nil
}

// Object reads an object, calling member for each key (raw, escapes not resolved) with the scanner
// positioned at the value; member must consume the value (Value, Text, ...).
func (s *Scanner) Object(member func(key []byte, esc bool) error) error { return s.object(1, member) }

func (s *Scanner) object(depth int, member func(key []byte, esc bool) error) error {
	if s.Peek() != '{' {
		return ErrSyntax
	}
	s.I++
	if s.Peek() == '}' {
		s.I++
		return nil
	}
	for {
		key, esc, err := s.String()
		if err != nil {
			return err
		}
		if s.Peek() != ':' {
			return ErrSyntax
		}
		s.I++
		if err := member(key, esc); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.I++
		case '}':
			s.I++
			return nil
		default:
			return ErrSyntax
		}
	}
}

// End checks that only whitespace follows.
func (s *Scanner) End() error {
	s.WS()
	if s.I != len(s.B) {
		return ErrSyntax
	}
	return nil
}

// Unescape returns the string the raw content of a JSON string (between its quotes) holds, with
// escapes resolved and invalid UTF-8 replaced as encoding/json does.
func Unescape(raw []byte) (string, error) {
	out, err := AppendUnescaped(make([]byte, 0, len(raw)), raw)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(out) {
		return replaceInvalid(out), nil
	}
	return string(out), nil
}

// AppendUnescaped appends to dst the text that the content of a JSON string (between its quotes)
// holds, resolving escapes (a lone or mismatched surrogate becomes U+FFFD, as in encoding/json); an
// invalid escape is ErrSyntax. Other bytes are copied as they are.
func AppendUnescaped(dst, raw []byte) ([]byte, error) {
	for len(raw) > 0 {
		// A plain loop finds the next backslash: in the host's double-encoded payloads they come every
		// few bytes, where bytes.IndexByte's call and setup cost more than they save.
		k := 0
		for k < len(raw) && raw[k] != '\\' {
			k++
		}
		if k == len(raw) {
			return append(dst, raw...), nil
		}
		dst = append(dst, raw[:k]...)
		if k+1 >= len(raw) {
			return dst, ErrSyntax
		}
		n := 2
		switch c := raw[k+1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if k+6 > len(raw) || !isHex4(raw[k+2:k+6]) {
				return dst, ErrSyntax
			}
			r, n2 := hexRune(raw[k+2:k+6]), 6
			switch {
			case r >= 0xD800 && r < 0xDC00:
				low := k + 12
				if low <= len(raw) && raw[k+6] == '\\' && raw[k+7] == 'u' && isHex4(raw[k+8:low]) {
					if r2 := hexRune(raw[k+8 : low]); r2 >= 0xDC00 && r2 < 0xE000 {
						r, n2 = (r-0xD800)<<10+(r2-0xDC00)+0x10000, 12
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			case r >= 0xDC00 && r < 0xE000:
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			n = n2
		default:
			return dst, ErrSyntax
		}
		raw = raw[k+n:]
	}
	return dst, nil
}

func isHex4(h []byte) bool {
	return len(h) == 4 && isHex(h[0]) && isHex(h[1]) && isHex(h[2]) && isHex(h[3])
}

func hexRune(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// replaceInvalid replaces each invalid UTF-8 byte with U+FFFD, as encoding/json does.
func replaceInvalid(b []byte) string {
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return string(out)
}
