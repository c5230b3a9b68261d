// Package events owns the event catalog (types, sources, subjects), CloudEvents 1.0 construction and
// parsing, the click decoder every clickstream consumer uses (streaming and Capture), and
// deterministic event ids. Every event this project consumes or publishes is a CloudEvent.
package events

import (
	"github.com/google/uuid"
)

// Clickstream event types (published by the website and apps to the "clickstream" hub).
const (
	TypeProductViewed = "com.contoso.clickstream.product.viewed"
	TypeAddedToCart   = "com.contoso.clickstream.product.addedtocart"
	TypePurchased     = "com.contoso.clickstream.product.purchased"
)

// IsClickType reports whether t is a clickstream type this project understands.
func IsClickType(t string) bool {
	switch t {
	case TypeProductViewed, TypeAddedToCart, TypePurchased:
		return true
	}
	return false
}

// namespace is the UUID namespace of every deterministic id this project derives.
var namespace = uuid.MustParse("6f3c9a52-1d0e-4c55-9a3e-2b8f6c1d7e40")

// DeterministicID derives a stable UUID (version 5) from parts, so that re-running the same work
// publishes events with the same ids and consumers can de-duplicate by id.
func DeterministicID(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	return uuid.NewSHA1(namespace, b).String()
}
