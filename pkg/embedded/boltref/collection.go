package boltref

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// entry is one version of a document: decoded, with its ETag and expiry (unix nanoseconds, 0 =
// never). A deleted entry stands for a delete not committed yet.
type entry[T any] struct {
	v       T
	etag    uint64
	expires int64
	deleted bool
}

// Collection is an embedded docstore.Collection: one bbolt bucket.
//
// A document is found, newest first, among the writes not committed yet (pending), the writes being
// committed (inflight), the decoded documents cache, and the file. Stored values are a 16-byte header
// (ETag, expiry) and the document's JSON, so a conditional write checks the ETag without decoding.
type Collection[T any] struct {
	db     *DB
	name   string
	bucket []byte

	mu       sync.Mutex
	pending  map[string]*entry[T] // by encoded key
	inflight map[string]*entry[T]
	cache    *lru.Cache[string, *entry[T]]
	seq      uint64 // the last ETag given out
	epoch    uint64 // counts settled commits, so a read from the file is cached only if still current
}

var _ docstore.Collection[struct{}] = (*Collection[struct{}])(nil)

// NewCollection opens the named collection of db.
func NewCollection[T any](db *DB, name string) (*Collection[T], error) {
	cache, err := lru.New[string, *entry[T]](CacheEntries)
	if err != nil {
		return nil, err
	}
	c := &Collection[T]{db: db, name: name, bucket: []byte(name), pending: map[string]*entry[T]{}, cache: cache}
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, ok := db.cols[name]; ok {
		return nil, fmt.Errorf("boltref: collection %q opened twice", name)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(c.bucket)
		if err != nil {
			return err
		}
		c.seq = b.Sequence()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltref: open collection %s: %w", name, err)
	}
	db.cols[name] = c
	return c, nil
}

// key encodes (pk, id) so that the keys of one partition key share a prefix no other one has.
func key(pk, id string) string {
	b := binary.AppendUvarint(make([]byte, 0, 2+len(pk)+len(id)), uint64(len(pk)))
	return string(append(append(b, pk...), id...))
}

func prefix(pk string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(pk))), pk...)
}

const headerLen = 16

func encode[T any](e *entry[T]) ([]byte, error) {
	doc, err := json.Marshal(e.v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerLen, headerLen+len(doc))
	binary.BigEndian.PutUint64(out, e.etag)
	binary.BigEndian.PutUint64(out[8:], uint64(e.expires))
	return append(out, doc...), nil
}

func header(v []byte) (etag uint64, expires int64, ok bool) {
	if len(v) < headerLen {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:])), true
}

func decode[T any](v []byte) (*entry[T], error) {
	etag, expires, ok := header(v)
	if !ok {
		return nil, errors.New("short value")
	}
	e := &entry[T]{etag: etag, expires: expires}
	if err := json.Unmarshal(v[headerLen:], &e.v); err != nil {
		return nil, err
	}
	return e, nil
}

func (c *Collection[T]) live(e *entry[T], now int64) bool {
	return e != nil && !e.deleted && (e.expires == 0 || e.expires > now)
}

// overlay returns the newest uncommitted version of k (a delete too), or nil. Called with c.mu held.
func (c *Collection[T]) overlay(k string) *entry[T] {
	if e, ok := c.pending[k]; ok {
		return e
	}
	if e, ok := c.inflight[k]; ok {
		return e
	}
	return nil
}

// meta is the current ETag and expiry of k, reading only the header from the file on a cache miss.
// Called with c.mu held.
func (c *Collection[T]) meta(k string) (etag uint64, expires int64, exists bool, err error) {
	if e := c.overlay(k); e != nil {
		return e.etag, e.expires, !e.deleted, nil
	}
	if e, ok := c.cache.Peek(k); ok {
		return e.etag, e.expires, true, nil
	}
	err = c.db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(c.bucket).Get([]byte(k))
		if v != nil {
			etag, expires, exists = header(v)
		}
		return nil
	})
	return etag, expires, exists, err
}

// Get implements docstore.Collection.
func (c *Collection[T]) Get(ctx context.Context, pk, id string) (T, docstore.ETag, error) {
	var zero T
	k := key(pk, id)
	now := c.db.now().UnixNano()
	c.mu.Lock()
	e := c.overlay(k)
	if e == nil {
		e, _ = c.cache.Get(k)
	}
	epoch := c.epoch
	c.mu.Unlock()
	if e == nil {
		var err error
		if e, err = c.read(k); err != nil {
			return zero, "", fmt.Errorf("boltref: %s/%s/%s: %w", c.name, pk, id, err)
		}
		if e != nil {
			c.mu.Lock()
			if c.epoch == epoch && c.overlay(k) == nil {
				c.cache.Add(k, e)
			}
			c.mu.Unlock()
		}
	}
	if !c.live(e, now) {
		return zero, "", fmt.Errorf("%s/%s/%s: %w", c.name, pk, id, docstore.ErrNotFound)
	}
	return e.v, formatETag(e.etag), nil
}

// read decodes k from the file (nil when absent).
func (c *Collection[T]) read(k string) (*entry[T], error) {
	var e *entry[T]
	err := c.db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(c.bucket).Get([]byte(k))
		if v == nil {
			return nil
		}
		var err error
		e, err = decode[T](v)
		return err
	})
	return e, err
}

// Put implements docstore.Collection. The write is visible at once and durable at the next Commit.
func (c *Collection[T]) Put(ctx context.Context, pk, id string, v T, opts docstore.PutOptions) (docstore.ETag, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	k := key(pk, id)
	now := c.db.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	etag, expires, exists, err := c.meta(k)
	if err != nil {
		return "", fmt.Errorf("boltref: %s/%s/%s: %w", c.name, pk, id, err)
	}
	exists = exists && (expires == 0 || expires > now.UnixNano())
	switch {
	case opts.IfNoneMatch && exists:
		return "", fmt.Errorf("%s/%s/%s exists: %w", c.name, pk, id, docstore.ErrConflict)
	case opts.IfMatch != "":
		want, ok := parseETag(opts.IfMatch)
		if !exists || !ok || etag != want {
			return "", fmt.Errorf("%s/%s/%s: %w", c.name, pk, id, docstore.ErrConflict)
		}
	}
	c.seq++
	e := &entry[T]{v: v, etag: c.seq}
	if opts.TTL > 0 {
		e.expires = now.Add(opts.TTL).UnixNano()
	}
	c.pending[k] = e
	c.db.wrote()
	return formatETag(e.etag), nil
}

// Delete implements docstore.Collection.
func (c *Collection[T]) Delete(ctx context.Context, pk, id string) error {
	k := key(pk, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _, exists, err := c.meta(k)
	if err != nil {
		return fmt.Errorf("boltref: %s/%s/%s: %w", c.name, pk, id, err)
	}
	if !exists {
		return nil
	}
	c.pending[k] = &entry[T]{deleted: true}
	c.db.wrote()
	return nil
}

// List implements docstore.Collection: the file's documents of pk, overlaid with the writes not
// committed yet. Documents whose version is cached are not decoded again.
func (c *Collection[T]) List(ctx context.Context, pk string, fn func(id string, v T, etag docstore.ETag) error) error {
	type item struct {
		id string
		e  *entry[T]
	}
	p := prefix(pk)
	now := c.db.now().UnixNano()
	found := map[string]*entry[T]{}
	c.mu.Lock()
	for _, m := range []map[string]*entry[T]{c.inflight, c.pending} { // pending last: it is newer
		for k, e := range m {
			if bytes.HasPrefix([]byte(k), p) {
				found[k] = e
			}
		}
	}
	c.mu.Unlock()
	// Values are copied out of the read transaction before c.mu is taken: holding a read transaction
	// while waiting for c.mu could deadlock with a Put (which reads under c.mu) when a commit remaps
	// the file.
	type stored struct {
		k string
		v []byte
	}
	var raw []stored
	err := c.db.bolt.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(c.bucket).Cursor()
		for k, v := cur.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = cur.Next() {
			if _, ok := found[string(k)]; ok {
				continue
			}
			if _, expires, ok := header(v); !ok || (expires != 0 && expires <= now) {
				continue
			}
			raw = append(raw, stored{string(k), bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltref: list %s/%s: %w", c.name, pk, err)
	}
	items := make([]item, 0, len(raw)+len(found))
	for _, r := range raw {
		etag, _, _ := header(r.v)
		c.mu.Lock()
		e, hit := c.cache.Peek(r.k)
		c.mu.Unlock()
		if !hit || e.etag != etag {
			if e, err = decode[T](r.v); err != nil {
				return fmt.Errorf("boltref: list %s/%s: %q: %w", c.name, pk, r.k, err)
			}
		}
		items = append(items, item{r.k[len(p):], e})
	}
	for k, e := range found {
		if c.live(e, now) {
			items = append(items, item{k[len(p):], e})
		}
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(it.id, it.e.v, formatETag(it.e.etag)); err != nil {
			return err
		}
	}
	return nil
}

// Len returns the number of live documents (for tests and metrics).
func (c *Collection[T]) Len() int {
	now := c.db.now().UnixNano()
	c.mu.Lock()
	over := map[string]bool{}
	for _, m := range []map[string]*entry[T]{c.inflight, c.pending} {
		for k, e := range m {
			over[k] = c.live(e, now)
		}
	}
	c.mu.Unlock()
	n := 0
	_ = c.db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(c.bucket).ForEach(func(k, v []byte) error {
			if _, ok := over[string(k)]; ok {
				return nil
			}
			if _, expires, ok := header(v); ok && (expires == 0 || expires > now) {
				n++
			}
			return nil
		})
	})
	for _, live := range over {
		if live {
			n++
		}
	}
	return n
}

// take implements collection.
func (c *Collection[T]) take() func(tx *bolt.Tx) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return nil
	}
	writes, seq := c.pending, c.seq
	c.inflight, c.pending = writes, map[string]*entry[T]{}
	return func(tx *bolt.Tx) error {
		b := tx.Bucket(c.bucket)
		for k, e := range writes { // entries are immutable: no lock needed
			if e.deleted {
				if err := b.Delete([]byte(k)); err != nil {
					return err
				}
				continue
			}
			v, err := encode(e)
			if err != nil {
				return fmt.Errorf("%s: encode: %w", c.name, err)
			}
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return b.SetSequence(seq)
	}
}

// settle implements collection.
func (c *Collection[T]) settle(committed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight == nil {
		return
	}
	for k, e := range c.inflight {
		switch {
		case !committed:
			if _, newer := c.pending[k]; !newer {
				c.pending[k] = e // committed by the next Commit
			}
		case e.deleted:
			c.cache.Remove(k)
		default:
			c.cache.Add(k, e)
		}
	}
	c.inflight = nil
	c.epoch++
}

// sweep implements collection: it deletes expired documents, in transactions of at most
// sweepBatch deletions so that commits do not wait long behind it.
func (c *Collection[T]) sweep(now int64) error {
	const sweepBatch = 4096
	for {
		var expired [][]byte
		err := c.db.bolt.View(func(tx *bolt.Tx) error {
			return tx.Bucket(c.bucket).ForEach(func(k, v []byte) error {
				if _, exp, ok := header(v); ok && exp != 0 && exp <= now && len(expired) < sweepBatch {
					expired = append(expired, bytes.Clone(k))
				}
				return nil
			})
		})
		if err != nil || len(expired) == 0 {
			return err
		}
		err = c.db.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(c.bucket)
			for _, k := range expired {
				// Still expired? A commit since the scan may have written a new version.
				if _, exp, ok := header(b.Get(k)); ok && exp != 0 && exp <= now {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("boltref: sweep %s: %w", c.name, err)
		}
		c.mu.Lock()
		for _, k := range expired {
			if e, ok := c.cache.Peek(string(k)); ok && e.expires != 0 && e.expires <= now {
				c.cache.Remove(string(k))
			}
		}
		c.mu.Unlock()
		if len(expired) < sweepBatch {
			return nil
		}
	}
}

func formatETag(n uint64) docstore.ETag { return docstore.ETag(`"` + strconv.FormatUint(n, 10) + `"`) }

func parseETag(e docstore.ETag) (uint64, bool) {
	s := string(bytes.Trim([]byte(e), `"`))
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
