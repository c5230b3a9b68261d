package catalog

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/contoso/eventpipeline/pkg/jsonscan"
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

var errSyntax = jsonscan.ErrSyntax

// scanMembers validates doc (a JSON object) and returns the raw values of the product members.
func scanMembers(doc []byte) (vals [nFields][]byte, err error) {
	s := jsonscan.New(doc)
	if s.Peek() != '{' {
		return vals, errSyntax
	}
	err = s.Object(func(key []byte, esc bool) error {
		k := string(key) // no allocation: only compared
		if esc {
			unq, err := jsonscan.Unescape(key)
			if err != nil {
				return errSyntax
			}
			k = unq
		}
		s.WS()
		start := s.I
		if err := s.Value(); err != nil {
			return err
		}
		if f := fieldIndex(k); f >= 0 {
			vals[f] = s.B[start:s.I]
		}
		return nil
	})
	if err == nil {
		err = s.End()
	}
	return vals, err
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
