// Package docstore declares the document-store contract every stateful domain builds on: typed
// collections of JSON documents addressed by (partition key, id), with ETag optimistic concurrency
// and per-document time to live. Two implementations exist: Cosmos DB (pkg/azure/cosmos) and the
// embedded file-backed store (pkg/embedded); both pass the contract suite in docstoretest.
package docstore

import (
	"context"
	"errors"
	"time"
)

// ETag is an opaque version of a stored document.
type ETag string

var (
	// ErrNotFound: no document with that key (or it expired).
	ErrNotFound = errors.New("document not found")
	// ErrConflict: a precondition failed: IfMatch names a stale ETag, or IfNoneMatch found a document.
	ErrConflict = errors.New("document changed concurrently")
)

// PutOptions are the conditions and lifetime of a write.
type PutOptions struct {
	// IfMatch makes the write succeed only if the stored document still has this ETag.
	IfMatch ETag
	// IfNoneMatch makes the write succeed only if no document exists (create).
	IfNoneMatch bool
	// TTL expires the document that long after this write; zero keeps it (or uses the container's
	// default in Cosmos DB).
	TTL time.Duration
}

// Collection is one container of documents of type T. Values passed to Put and returned by Get
// must be treated as immutable by the caller (the embedded store keeps them in memory).
//
// Errors other than ErrNotFound and ErrConflict mean the store could not be used now (throttled,
// unreachable, unauthorized): callers fail the invocation so the host's retry policy runs again.
type Collection[T any] interface {
	Get(ctx context.Context, pk, id string) (T, ETag, error)
	Put(ctx context.Context, pk, id string, v T, opts PutOptions) (ETag, error)
	// Delete removes a document; deleting a missing document is not an error.
	Delete(ctx context.Context, pk, id string) error
	// List calls fn for each document in the partition, in no particular order, until fn returns an
	// error (returned as is).
	List(ctx context.Context, pk string, fn func(id string, v T, etag ETag) error) error
}
