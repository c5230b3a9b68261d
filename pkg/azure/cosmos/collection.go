package cosmos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// Collection is a docstore.Collection of T stored as the items of one Cosmos DB container. T must
// marshal to a JSON object whose "id" is the id passed to Put and whose partition key field (the
// container's path, e.g. "/userId") holds the pk passed to Put. Safe for concurrent use.
type Collection[T any] struct {
	container *azcosmos.ContainerClient
	name      string
	pkField   string // top-level property named by the partition key path; "" for nested paths
	listQuery string
	err       error // from NewContainer (only an empty database or container name)
}

var _ docstore.Collection[struct{}] = (*Collection[struct{}])(nil)

// NewCollection returns the collection stored in container of database. The container must exist
// (see EnsureContainers); a per-document TTL only takes effect if the container has time to live on
// (DefaultTTLSeconds -1 or positive).
func NewCollection[T any](c *Client, database string, container settings.Container) *Collection[T] {
	cc, err := c.sdk.NewContainer(database, container.Name)
	if err != nil {
		err = fmt.Errorf("cosmos container %q in database %q: %w", container.Name, database, err)
	}
	return &Collection[T]{container: cc, name: container.Name, pkField: topLevelField(container.PartitionKey),
		listQuery: listQuery(container.PartitionKey), err: err}
}

// listQuery selects the documents of one partition. The request's partition key already scopes the
// query in Cosmos DB, so the WHERE clause changes nothing there; it is for the npm stand-in used in
// tests, which ignores that header and would return every partition.
func listQuery(pkPath string) string {
	segments := strings.Split(strings.TrimPrefix(pkPath, "/"), "/")
	if !strings.HasPrefix(pkPath, "/") || slices.Contains(segments, "") {
		return "SELECT * FROM c"
	}
	var b strings.Builder
	b.WriteString("SELECT * FROM c WHERE c")
	for _, s := range segments {
		q, _ := json.Marshal(s) // bracket notation: any property name, even a reserved word
		fmt.Fprintf(&b, "[%s]", q)
	}
	b.WriteString(" = @pk")
	return b.String()
}

// topLevelField is the property a partition key path like "/userId" names, or "" for a nested path
// (not checked by Put).
func topLevelField(path string) string {
	field, ok := strings.CutPrefix(path, "/")
	if !ok || field == "" || strings.Contains(field, "/") {
		return ""
	}
	return field
}

// Get implements docstore.Collection.
func (c *Collection[T]) Get(ctx context.Context, pk, id string) (T, docstore.ETag, error) {
	var v T
	if c.err != nil {
		return v, "", c.err
	}
	resp, err := c.container.ReadItem(ctx, azcosmos.NewPartitionKeyString(pk), id, nil)
	if err != nil {
		if statusOf(err) == http.StatusNotFound {
			err = docstore.ErrNotFound
		}
		return v, "", fmt.Errorf("cosmos get %s/%s: %w", c.name, id, err)
	}
	if err := json.Unmarshal(resp.Value, &v); err != nil {
		return v, "", fmt.Errorf("cosmos get %s/%s: decode: %w", c.name, id, err)
	}
	return v, docstore.ETag(resp.ETag), nil
}

// Put implements docstore.Collection: IfNoneMatch creates, IfMatch replaces that version, and
// otherwise the document is upserted.
func (c *Collection[T]) Put(ctx context.Context, pk, id string, v T, opts docstore.PutOptions) (docstore.ETag, error) {
	if c.err != nil {
		return "", c.err
	}
	if opts.IfNoneMatch && opts.IfMatch != "" {
		return "", fmt.Errorf("cosmos put %s/%s: IfMatch and IfNoneMatch are both set", c.name, id)
	}
	body, err := c.document(pk, id, v, opts.TTL)
	if err != nil {
		return "", fmt.Errorf("cosmos put %s/%s: %w", c.name, id, err)
	}
	key := azcosmos.NewPartitionKeyString(pk)
	var resp azcosmos.ItemResponse
	switch {
	case opts.IfNoneMatch:
		resp, err = c.container.CreateItem(ctx, key, body, nil)
		if statusOf(err) == http.StatusConflict {
			err = fmt.Errorf("already exists: %w", docstore.ErrConflict)
		}
		if err != nil {
			return "", fmt.Errorf("cosmos create %s/%s: %w", c.name, id, err)
		}
	case opts.IfMatch != "":
		etag := azcore.ETag(opts.IfMatch)
		resp, err = c.container.ReplaceItem(ctx, key, id, body, &azcosmos.ItemOptions{IfMatchEtag: &etag})
		switch statusOf(err) {
		case http.StatusPreconditionFailed:
			err = fmt.Errorf("etag %s is stale: %w", opts.IfMatch, docstore.ErrConflict)
		case http.StatusNotFound:
			err = docstore.ErrNotFound
		}
		if err != nil {
			return "", fmt.Errorf("cosmos replace %s/%s: %w", c.name, id, err)
		}
	default:
		resp, err = c.container.UpsertItem(ctx, key, body, nil)
		if err != nil {
			return "", fmt.Errorf("cosmos upsert %s/%s: %w", c.name, id, err)
		}
	}
	return docstore.ETag(resp.ETag), nil
}

// Delete implements docstore.Collection.
func (c *Collection[T]) Delete(ctx context.Context, pk, id string) error {
	if c.err != nil {
		return c.err
	}
	_, err := c.container.DeleteItem(ctx, azcosmos.NewPartitionKeyString(pk), id, nil)
	if err != nil && statusOf(err) != http.StatusNotFound {
		return fmt.Errorf("cosmos delete %s/%s: %w", c.name, id, err)
	}
	return nil
}

// List implements docstore.Collection with a single-partition query.
func (c *Collection[T]) List(ctx context.Context, pk string, fn func(id string, v T, etag docstore.ETag) error) error {
	if c.err != nil {
		return c.err
	}
	pager := c.container.NewQueryItemsPager(c.listQuery, azcosmos.NewPartitionKeyString(pk), &azcosmos.QueryOptions{
		QueryParameters: []azcosmos.QueryParameter{{Name: "@pk", Value: pk}},
	})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("cosmos list %s (pk %s): %w", c.name, pk, err)
		}
		for _, item := range page.Items {
			var meta struct {
				ID   string `json:"id"`
				ETag string `json:"_etag"`
			}
			var v T
			if err := json.Unmarshal(item, &meta); err != nil {
				return fmt.Errorf("cosmos list %s (pk %s): decode: %w", c.name, pk, err)
			}
			if err := json.Unmarshal(item, &v); err != nil {
				return fmt.Errorf("cosmos list %s/%s: decode: %w", c.name, meta.ID, err)
			}
			if err := fn(meta.ID, v, docstore.ETag(meta.ETag)); err != nil {
				return err
			}
		}
	}
	return nil
}

// document is the item body for v: its JSON object, checked against (pk, id), with "ttl" added when
// the write has a lifetime.
func (c *Collection[T]) document(pk, id string, v T, ttl time.Duration) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("%T does not encode to a JSON object", v)
	}
	// Cosmos DB addresses an item by the "id" and partition key inside its body (and the fake used in
	// tests does not even check that they match the request), so a type that omits or renames them
	// would silently write somewhere else.
	if err := checkField(fields, "id", id); err != nil {
		return nil, fmt.Errorf("%T: %w", v, err)
	}
	if c.pkField != "" {
		if err := checkField(fields, c.pkField, pk); err != nil {
			return nil, fmt.Errorf("%T: partition key %w", v, err)
		}
	}
	if ttl <= 0 {
		return body, nil
	}
	if _, ok := fields["ttl"]; ok {
		return nil, fmt.Errorf("%T has its own \"ttl\" field and PutOptions.TTL is set", v)
	}
	return withTTL(body, ttlSeconds(ttl))
}

func checkField(fields map[string]json.RawMessage, name, want string) error {
	raw, ok := fields[name]
	if !ok {
		return fmt.Errorf("field %q is missing from the JSON document", name)
	}
	var got string
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("field %q is %s, want the string %q", name, raw, want)
	}
	if got != want {
		return fmt.Errorf("field %q is %q, want %q", name, got, want)
	}
	return nil
}

// ttlSeconds is d in whole seconds, rounded up so that a lifetime is never shortened, and capped at
// Cosmos DB's int32 maximum.
func ttlSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return min(s, math.MaxInt32)
}

// withTTL adds "ttl": seconds to a JSON object by splicing it before the closing brace, so the
// caller's encoding (field order, number formats) is kept as is.
func withTTL(obj []byte, seconds int64) ([]byte, error) {
	end := len(bytes.TrimRight(obj, " \t\r\n")) - 1
	if end < 1 || obj[end] != '}' || bytes.TrimLeft(obj, " \t\r\n")[0] != '{' {
		return nil, errors.New("ttl: document is not a JSON object")
	}
	field := `"ttl":` + strconv.FormatInt(seconds, 10)
	if inner := bytes.TrimRight(obj[:end], " \t\r\n"); inner[len(inner)-1] != '{' {
		field = "," + field
	}
	out := make([]byte, 0, len(obj)+len(field))
	out = append(out, obj[:end]...)
	out = append(out, field...)
	return append(out, obj[end:]...), nil
}
