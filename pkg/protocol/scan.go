package protocol

import (
	"errors"
	"fmt"

	"github.com/contoso/eventpipeline/pkg/jsonscan"
)

// A small JSON scanner for the hot path: an Event Hubs envelope is mostly metadata the function does
// not need (SystemPropertiesArray alone is a third of it), and its payload is a string holding an
// array of strings holding JSON, i.e. escaped twice. encoding/json would validate and copy all of it
// several times; this scanner skips what is not needed and unescapes what is, once, into one buffer.
// Values handed on (bodies, property objects) are still parsed by encoding/json where they are used.

var errSyntax = errors.New("invalid JSON")

func syntaxErr(b []byte, i int, what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSyntax, what, i)
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"', and whether it contains
// escapes. A plain byte loop: the host's double-encoded payloads have an escape every few bytes, so
// searching for the next quote or backslash (bytes.IndexAny) stopped almost as often and cost more.
func skipString(b []byte, i int) (int, bool, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, false, syntaxErr(b, i, "want string")
	}
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1, escaped, nil
		case '\\':
			escaped = true
			j++ // the escaped byte (\uXXXX: the hex digits contain no quote)
		}
	}
	return 0, false, syntaxErr(b, i, "unterminated string")
}

// skipValue returns the index after the JSON value that starts at or after b[i].
func skipValue(b []byte, i int) (int, error) {
	i = skipWS(b, i)
	if i >= len(b) {
		return 0, syntaxErr(b, i, "want value")
	}
	switch c := b[i]; c {
	case '"':
		j, _, err := skipString(b, i)
		return j, err
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			switch b[j] {
			case '"':
				k, _, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = k
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
			j++
		}
		return 0, syntaxErr(b, i, "unterminated "+string(c))
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if j == i {
					return 0, syntaxErr(b, i, "want value")
				}
				return j, nil
			}
			j++
		}
		if j == i {
			return 0, syntaxErr(b, i, "want value")
		}
		return j, nil
	}
}

// eachMember calls fn for each member of the object starting at or after b[i], with the raw key
// (escapes not resolved; this project's keys have none) and the raw value. It returns the index
// after the object.
func eachMember(b []byte, i int, fn func(key, val []byte) error) (int, error) {
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, syntaxErr(b, i, "want object")
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		i = skipWS(b, i)
		ke, _, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i+1 : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, syntaxErr(b, i, "want ':'")
		}
		vs := skipWS(b, i+1)
		ve, err := skipValue(b, vs)
		if err != nil {
			return 0, err
		}
		if err := fn(key, b[vs:ve]); err != nil {
			return 0, err
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			return 0, syntaxErr(b, i, "unterminated object")
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, syntaxErr(b, i, "want ',' or '}'")
		}
		i++
	}
}

// eachElement calls fn for each element of the array starting at or after b[i].
func eachElement(b []byte, i int, fn func(idx int, val []byte) error) (int, error) {
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '[' {
		return 0, syntaxErr(b, i, "want array")
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for n := 0; ; n++ {
		vs := skipWS(b, i)
		ve, err := skipValue(b, vs)
		if err != nil {
			return 0, err
		}
		if err := fn(n, b[vs:ve]); err != nil {
			return 0, err
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			return 0, syntaxErr(b, i, "unterminated array")
		}
		if b[i] == ']' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, syntaxErr(b, i, "want ',' or ']'")
		}
		i++
	}
}

// appendUnquoted appends the content of the JSON string s (with its quotes) to dst, resolving
// escapes (pkg/jsonscan). Invalid escapes are errors; invalid UTF-8 is kept as is.
func appendUnquoted(dst, s []byte) ([]byte, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return dst, syntaxErr(s, 0, "want string")
	}
	out, err := jsonscan.AppendUnescaped(dst, s[1:len(s)-1])
	if err != nil {
		return out, syntaxErr(s, 0, "bad escape")
	}
	return out, nil
}
