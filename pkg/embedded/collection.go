package embedded

import (
	"bufio"
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

// entry is one version of a document, decoded, with its ETag and expiry (unix nanoseconds, 0 = never).
// A deleted entry stands for a delete not committed yet. Entries are immutable once made.
type entry[T any] struct {
	v       T
	etag    uint64
	expires int64
	deleted bool
}

// meta is a committed document in the key directory: where its record is, its ETag and expiry.
type meta struct {
	at      location
	etag    uint64
	expires int64
}

type docKey struct{ pk, id string }

// Collection is an embedded docstore.Collection.
//
// A document is found, newest first, among the writes not committed yet (pending), the writes being
// committed (inflight), and the committed ones (keydir, whose decoded values the cache may hold).
type Collection[T any] struct {
	db    *DB
	cname string
	codec codec[T]

	mu       sync.Mutex
	keydir   map[string]map[string]meta // pk -> id -> committed record
	pending  map[docKey]*entry[T]
	inflight map[docKey]*entry[T]
	cache    *lru.Cache[docKey, *entry[T]]
	seq      uint64 // the last ETag given out
	live     int64  // bytes of the records keydir points at
	epoch    uint64 // counts settled commits: a value read from the log is cached only if still current
}

var _ docstore.Collection[struct{}] = (*Collection[struct{}])(nil)

// codec encodes documents for the log: T's own compact binary form when it has one
// (encoding.BinaryAppender on T and encoding.BinaryUnmarshaler on *T), JSON otherwise.
type codec[T any] struct {
	enc func(buf []byte, v T) ([]byte, error)
	dec func(b []byte, v *T) error
}

func codecOf[T any]() codec[T] {
	var zero T
	if _, ok := any(zero).(encoding.BinaryAppender); ok {
		if _, ok := any(&zero).(encoding.BinaryUnmarshaler); ok {
			return codec[T]{
				enc: func(buf []byte, v T) ([]byte, error) { return any(v).(encoding.BinaryAppender).AppendBinary(buf) },
				dec: func(b []byte, v *T) error { return any(v).(encoding.BinaryUnmarshaler).UnmarshalBinary(b) },
			}
		}
	}
	return codec[T]{
		enc: func(buf []byte, v T) ([]byte, error) {
			b, err := json.Marshal(v)
			return append(buf, b...), err
		},
		dec: func(b []byte, v *T) error { return json.Unmarshal(b, v) },
	}
}

// NewCollection opens the named collection of db. A JSON-lines log of the first embedded store
// (<dir>/docs/<name>.jsonl) is imported on first open, committed, and renamed <name>.jsonl.imported.
func NewCollection[T any](db *DB, name string) (*Collection[T], error) {
	cache, err := lru.New[docKey, *entry[T]](CacheEntries)
	if err != nil {
		return nil, err
	}
	c := &Collection[T]{db: db, cname: name, codec: codecOf[T](), pending: map[docKey]*entry[T]{}, cache: cache}
	if err := db.register(c); err != nil {
		return nil, err
	}
	if db.readOnly {
		return c, nil
	}
	legacy, err := c.importLegacy()
	if err != nil {
		return nil, fmt.Errorf("embedded: open collection %s: %w", name, err)
	}
	if legacy != "" {
		if err := db.Commit(); err != nil {
			return nil, fmt.Errorf("embedded: open collection %s: %w", name, err)
		}
		if err := os.Rename(legacy, legacy+".imported"); err != nil {
			return nil, fmt.Errorf("embedded: open collection %s: %w", name, err)
		}
	}
	return c, nil
}

func (c *Collection[T]) name() string { return c.cname }

// adopt takes what the log's replay found for this collection. Called once, by register.
func (c *Collection[T]) adopt(r *replayed) {
	c.keydir, c.seq = r.docs, r.seq
	for _, ids := range c.keydir {
		for _, m := range ids {
			c.live += int64(m.at.n)
		}
	}
}

func (c *Collection[T]) sequence() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

func (c *Collection[T]) liveBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

func expired(expires, now int64) bool { return expires != 0 && expires <= now }

// overlay is the newest uncommitted version of k (a delete too), or nil. Called with c.mu held.
func (c *Collection[T]) overlay(k docKey) *entry[T] {
	if e, ok := c.pending[k]; ok {
		return e
	}
	if e, ok := c.inflight[k]; ok {
		return e
	}
	return nil
}

// current is k's ETag and expiry without decoding anything. Called with c.mu held.
func (c *Collection[T]) current(k docKey) (etag uint64, expires int64, exists bool) {
	if e := c.overlay(k); e != nil {
		return e.etag, e.expires, !e.deleted
	}
	m, ok := c.keydir[k.pk][k.id]
	return m.etag, m.expires, ok
}

// Get implements docstore.Collection.
func (c *Collection[T]) Get(ctx context.Context, pk, id string) (T, docstore.ETag, error) {
	var zero T
	k := docKey{pk, id}
	now := c.db.now().UnixNano()
	c.mu.Lock()
	e := c.overlay(k)
	if e == nil {
		e, _ = c.cache.Get(k)
	}
	if e != nil {
		c.mu.Unlock()
		if e.deleted || expired(e.expires, now) {
			return zero, "", fmt.Errorf("%s/%s/%s: %w", c.cname, pk, id, docstore.ErrNotFound)
		}
		return e.v, formatETag(e.etag), nil
	}
	m, ok := c.keydir[pk][id]
	epoch := c.epoch
	c.mu.Unlock()
	if !ok || expired(m.expires, now) {
		return zero, "", fmt.Errorf("%s/%s/%s: %w", c.cname, pk, id, docstore.ErrNotFound)
	}
	e, err := c.read(k, m)
	if err != nil {
		return zero, "", fmt.Errorf("embedded: %s/%s/%s: %w", c.cname, pk, id, err)
	}
	c.mu.Lock()
	if c.epoch == epoch && c.overlay(k) == nil {
		c.cache.Add(k, e)
	}
	c.mu.Unlock()
	return e.v, formatETag(e.etag), nil
}

// read decodes the committed document k from the log. If a compaction moved it since m was looked
// up, it is looked up again under the log's read lock.
func (c *Collection[T]) read(k docKey, m meta) (*entry[T], error) {
	log := c.db.log
	log.mu.RLock()
	defer log.mu.RUnlock()
	c.mu.Lock()
	if cur, ok := c.keydir[k.pk][k.id]; ok && cur.etag == m.etag {
		m = cur
	}
	c.mu.Unlock()
	r, err := log.read(m.at)
	if err != nil {
		return nil, err
	}
	e := &entry[T]{etag: r.etag, expires: r.expires}
	if err := c.codec.dec(r.value, &e.v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return e, nil
}

// Put implements docstore.Collection. The write is visible at once and durable at the next Commit.
func (c *Collection[T]) Put(ctx context.Context, pk, id string, v T, opts docstore.PutOptions) (docstore.ETag, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if c.db.readOnly {
		return "", fmt.Errorf("embedded: %s: the store is open read-only", c.cname)
	}
	k := docKey{pk, id}
	now := c.db.now()
	c.mu.Lock()
	etag, expires, exists := c.current(k)
	exists = exists && !expired(expires, now.UnixNano())
	switch {
	case opts.IfNoneMatch && exists:
		c.mu.Unlock()
		return "", fmt.Errorf("%s/%s/%s exists: %w", c.cname, pk, id, docstore.ErrConflict)
	case opts.IfMatch != "":
		want, ok := parseETag(opts.IfMatch)
		if !exists || !ok || etag != want {
			c.mu.Unlock()
			return "", fmt.Errorf("%s/%s/%s: %w", c.cname, pk, id, docstore.ErrConflict)
		}
	}
	c.seq++
	e := &entry[T]{v: v, etag: c.seq}
	if opts.TTL > 0 {
		e.expires = now.Add(opts.TTL).UnixNano()
	}
	c.pending[k] = e
	c.mu.Unlock()
	c.db.wrote()
	return formatETag(e.etag), nil
}

// Delete implements docstore.Collection.
func (c *Collection[T]) Delete(ctx context.Context, pk, id string) error {
	if c.db.readOnly {
		return fmt.Errorf("embedded: %s: the store is open read-only", c.cname)
	}
	k := docKey{pk, id}
	c.mu.Lock()
	if _, _, exists := c.current(k); !exists {
		c.mu.Unlock()
		return nil
	}
	c.pending[k] = &entry[T]{deleted: true}
	c.mu.Unlock()
	c.db.wrote()
	return nil
}

// List implements docstore.Collection: the committed documents of pk overlaid with the writes not
// committed yet.
func (c *Collection[T]) List(ctx context.Context, pk string, fn func(id string, v T, etag docstore.ETag) error) error {
	type item struct {
		id string
		e  *entry[T] // nil: read from m
		m  meta
	}
	now := c.db.now().UnixNano()
	c.mu.Lock()
	seen := map[string]bool{}
	var items []item
	for _, m := range []map[docKey]*entry[T]{c.pending, c.inflight} { // pending first: it is newer
		for k, e := range m {
			if k.pk != pk || seen[k.id] {
				continue
			}
			seen[k.id] = true
			if !e.deleted && !expired(e.expires, now) {
				items = append(items, item{id: k.id, e: e})
			}
		}
	}
	for id, m := range c.keydir[pk] {
		if seen[id] || expired(m.expires, now) {
			continue
		}
		e, _ := c.cache.Peek(docKey{pk, id})
		if e != nil && e.etag != m.etag {
			e = nil
		}
		items = append(items, item{id: id, e: e, m: m})
	}
	c.mu.Unlock()
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := it.e
		if e == nil {
			var err error
			if e, err = c.read(docKey{pk, it.id}, it.m); err != nil {
				return fmt.Errorf("embedded: list %s/%s: %s: %w", c.cname, pk, it.id, err)
			}
		}
		if err := fn(it.id, e.v, formatETag(e.etag)); err != nil {
			return err
		}
	}
	return nil
}

// Len returns the number of live documents (for tests and metrics).
func (c *Collection[T]) Len() int {
	now := c.db.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	over := map[docKey]bool{}
	for _, m := range []map[docKey]*entry[T]{c.pending, c.inflight} {
		for k, e := range m {
			if _, ok := over[k]; !ok {
				over[k] = !e.deleted && !expired(e.expires, now)
			}
		}
	}
	for pk, ids := range c.keydir {
		for id, m := range ids {
			if _, ok := over[docKey{pk, id}]; !ok && !expired(m.expires, now) {
				n++
			}
		}
	}
	for _, live := range over {
		if live {
			n++
		}
	}
	return n
}

// take implements collection: the pending writes become in flight, encoded as records into buf.
func (c *Collection[T]) take(buf []byte) ([]byte, []pendingRecord, error) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return buf, nil, nil
	}
	writes := c.pending
	c.inflight, c.pending = writes, map[docKey]*entry[T]{}
	c.mu.Unlock()
	recs := make([]pendingRecord, 0, len(writes))
	var value []byte
	for k, e := range writes { // entries are immutable: no lock needed
		start := len(buf)
		if e.deleted {
			buf = appendRecord(buf, kindDel, c.cname, k.pk, k.id, 0, 0, nil)
		} else {
			var err error
			if value, err = c.codec.enc(value[:0], e.v); err != nil {
				return buf[:start], nil, fmt.Errorf("%s/%s/%s: encode: %w", c.cname, k.pk, k.id, err)
			}
			buf = appendRecord(buf, kindPut, c.cname, k.pk, k.id, e.etag, e.expires, value)
		}
		recs = append(recs, pendingRecord{pk: k.pk, id: k.id, off: int64(start), n: int32(len(buf) - start)})
	}
	return buf, recs, nil
}

// settle implements collection.
func (c *Collection[T]) settle(placed []placedRecord, committed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight == nil {
		return
	}
	if !committed {
		for k, e := range c.inflight {
			if _, newer := c.pending[k]; !newer {
				c.pending[k] = e // the next Commit writes it
			}
		}
		c.inflight = nil
		return
	}
	for _, p := range placed {
		k := docKey{p.pk, p.id}
		e := c.inflight[k]
		ids := c.keydir[k.pk]
		if old, ok := ids[k.id]; ok {
			c.live -= int64(old.at.n)
		}
		if e.deleted {
			delete(ids, k.id)
			if len(ids) == 0 {
				delete(c.keydir, k.pk)
			}
			c.cache.Remove(k)
			continue
		}
		if ids == nil {
			ids = map[string]meta{}
			c.keydir[k.pk] = ids
		}
		ids[k.id] = meta{at: p.at, etag: e.etag, expires: e.expires}
		c.live += int64(p.at.n)
		c.cache.Add(k, e)
	}
	c.inflight = nil
	c.epoch++
}

// sweep implements collection.
func (c *Collection[T]) sweep(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pk, ids := range c.keydir {
		for id, m := range ids {
			if expired(m.expires, now) {
				delete(ids, id)
				c.live -= int64(m.at.n)
				c.cache.Remove(docKey{pk, id})
			}
		}
		if len(ids) == 0 {
			delete(c.keydir, pk)
		}
	}
}

// liveRecords implements collection.
func (c *Collection[T]) liveRecords() []liveRecord {
	now := c.db.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]liveRecord, 0, 1024)
	for pk, ids := range c.keydir {
		for id, m := range ids {
			if !expired(m.expires, now) {
				out = append(out, liveRecord{pk: pk, id: id, at: m.at})
			}
		}
	}
	return out
}

// relocate implements collection. Called with the log's write lock held.
func (c *Collection[T]) relocate(moved []placedRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := map[docKey]bool{}
	for _, p := range moved {
		kept[docKey{p.pk, p.id}] = true
		if m, ok := c.keydir[p.pk][p.id]; ok && m.at == p.from {
			m.at = p.at
			c.keydir[p.pk][p.id] = m
		}
	}
	// What was not copied (expired since the sweep) is gone with the old segments.
	for pk, ids := range c.keydir {
		for id, m := range ids {
			if !kept[docKey{pk, id}] {
				delete(ids, id)
				c.live -= int64(m.at.n)
				c.cache.Remove(docKey{pk, id})
			}
		}
		if len(ids) == 0 {
			delete(c.keydir, pk)
		}
	}
}

func formatETag(n uint64) docstore.ETag { return docstore.ETag(`"` + strconv.FormatUint(n, 10) + `"`) }

func parseETag(e docstore.ETag) (uint64, bool) {
	s := string(bytes.Trim([]byte(e), `"`))
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// legacyLine is one record of the first embedded store's JSON-lines log.
type legacyLine struct {
	PK      string          `json:"pk"`
	ID      string          `json:"id"`
	ETag    uint64          `json:"etag"`
	Expires int64           `json:"exp,omitempty"`
	Deleted bool            `json:"del,omitempty"`
	Doc     json.RawMessage `json:"doc,omitempty"`
}

// importLegacy puts the documents of <dir>/docs/<name>.jsonl (the latest line of each key) as pending
// writes and returns the file's path, or "" when there is none.
func (c *Collection[T]) importLegacy() (string, error) {
	path := filepath.Join(c.db.dir, "docs", c.cname+".jsonl")
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	defer f.Close()
	latest := map[docKey]legacyLine{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		var l legacyLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			if !sc.Scan() {
				break // a torn last line after a crash
			}
			return "", fmt.Errorf("import %s line %d: %v", path, n, err)
		}
		latest[docKey{l.PK, l.ID}] = l
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("import %s: %w", path, err)
	}
	now := c.db.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, l := range latest {
		c.seq = max(c.seq, l.ETag)
		if l.Deleted || expired(l.Expires, now) {
			continue
		}
		e := &entry[T]{etag: l.ETag, expires: l.Expires}
		if err := json.Unmarshal(l.Doc, &e.v); err != nil {
			return "", fmt.Errorf("import %s: %s/%s: %v", path, k.pk, k.id, err)
		}
		c.pending[k] = e
	}
	if len(c.pending) > 0 {
		c.db.wrote()
	}
	return path, nil
}
