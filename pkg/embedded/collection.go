package embedded

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/contoso/eventpipeline/pkg/docstore"
)

type entry[T any] struct {
	v       T
	etag    uint64
	expires int64
}

type key struct{ pk, id string }

// Collection is an embedded docstore.Collection.
type Collection[T any] struct {
	db    *DB
	name  string
	path  string
	mu    sync.RWMutex
	docs  map[key]*entry[T]
	dirty map[key]struct{}
	seq   uint64
	file  *os.File
	w     *bufio.Writer
}

var _ docstore.Collection[struct{}] = (*Collection[struct{}])(nil)

// NewCollection opens the named collection of db, replaying its log.
func NewCollection[T any](db *DB, name string) (*Collection[T], error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, ok := db.cols[name]; ok {
		return nil, fmt.Errorf("embedded: collection %q opened twice", name)
	}
	c := &Collection[T]{db: db, name: name, path: filepath.Join(db.dir, "docs", name+".jsonl"),
		docs: map[key]*entry[T]{}, dirty: map[key]struct{}{}}
	lines, err := c.load()
	if err != nil {
		return nil, fmt.Errorf("embedded: load %s: %w", c.path, err)
	}
	if lines > 2*len(c.docs)+1000 {
		if err := c.compact(); err != nil {
			return nil, fmt.Errorf("embedded: compact %s: %w", c.path, err)
		}
	}
	if c.file, c.w, err = openLog(c.path); err != nil {
		return nil, err
	}
	db.cols[name] = c
	return c, nil
}

func (c *Collection[T]) load() (int, error) {
	f, err := os.Open(c.path)
	if os.IsNotExist(err) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	now := c.db.now().UnixNano()
	n := 0
	for sc.Scan() {
		n++
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			// A torn last line after a crash is expected; anything else is corruption.
			if !sc.Scan() {
				break
			}
			return n, fmt.Errorf("line %d: %v", n, err)
		}
		k := key{l.PK, l.ID}
		if l.ETag > c.seq {
			c.seq = l.ETag
		}
		if l.Deleted || (l.Expires != 0 && l.Expires <= now) {
			delete(c.docs, k)
			continue
		}
		var v T
		if err := json.Unmarshal(l.Doc, &v); err != nil {
			return n, fmt.Errorf("line %d: %v", n, err)
		}
		c.docs[k] = &entry[T]{v: v, etag: l.ETag, expires: l.Expires}
	}
	return n, sc.Err()
}

// compact rewrites the log with one line per live document.
func (c *Collection[T]) compact() error {
	tmp := c.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for k, e := range c.docs {
		if err := writeLine(w, k, e); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, c.path)
}

func writeLine[T any](w *bufio.Writer, k key, e *entry[T]) error {
	l := logLine{PK: k.pk, ID: k.id}
	if e == nil {
		l.Deleted = true
	} else {
		doc, err := json.Marshal(e.v)
		if err != nil {
			return err
		}
		l.ETag, l.Expires, l.Doc = e.etag, e.expires, doc
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

func (c *Collection[T]) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dirty) == 0 {
		return nil
	}
	for k := range c.dirty {
		if err := writeLine(c.w, k, c.docs[k]); err != nil {
			return fmt.Errorf("embedded: flush %s: %w", c.name, err)
		}
	}
	clear(c.dirty)
	return c.w.Flush()
}

func (c *Collection[T]) closeLog() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == nil {
		return nil
	}
	err := c.w.Flush()
	if serr := c.file.Sync(); err == nil {
		err = serr
	}
	if cerr := c.file.Close(); err == nil {
		err = cerr
	}
	c.file = nil
	return err
}

func formatETag(n uint64) docstore.ETag { return docstore.ETag(`"` + strconv.FormatUint(n, 10) + `"`) }

func parseETag(e docstore.ETag) (uint64, bool) {
	s := string(bytes.Trim([]byte(e), `"`))
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func (c *Collection[T]) live(e *entry[T]) bool {
	return e != nil && (e.expires == 0 || e.expires > c.db.now().UnixNano())
}

// Get implements docstore.Collection.
func (c *Collection[T]) Get(ctx context.Context, pk, id string) (T, docstore.ETag, error) {
	c.mu.RLock()
	e := c.docs[key{pk, id}]
	c.mu.RUnlock()
	if !c.live(e) {
		var zero T
		return zero, "", fmt.Errorf("%s/%s/%s: %w", c.name, pk, id, docstore.ErrNotFound)
	}
	return e.v, formatETag(e.etag), nil
}

// Put implements docstore.Collection.
func (c *Collection[T]) Put(ctx context.Context, pk, id string, v T, opts docstore.PutOptions) (docstore.ETag, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	k := key{pk, id}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == nil {
		return "", fmt.Errorf("embedded: collection %s is closed", c.name)
	}
	cur := c.docs[k]
	exists := c.live(cur)
	switch {
	case opts.IfNoneMatch && exists:
		return "", fmt.Errorf("%s/%s/%s exists: %w", c.name, pk, id, docstore.ErrConflict)
	case opts.IfMatch != "":
		want, ok := parseETag(opts.IfMatch)
		if !exists || !ok || cur.etag != want {
			return "", fmt.Errorf("%s/%s/%s: %w", c.name, pk, id, docstore.ErrConflict)
		}
	}
	c.seq++
	e := &entry[T]{v: v, etag: c.seq}
	if opts.TTL > 0 {
		e.expires = c.db.now().Add(opts.TTL).UnixNano()
	}
	c.docs[k] = e
	c.dirty[k] = struct{}{}
	return formatETag(e.etag), nil
}

// Delete implements docstore.Collection.
func (c *Collection[T]) Delete(ctx context.Context, pk, id string) error {
	k := key{pk, id}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.docs[k]; !ok {
		return nil
	}
	delete(c.docs, k)
	c.dirty[k] = struct{}{}
	return nil
}

// List implements docstore.Collection.
func (c *Collection[T]) List(ctx context.Context, pk string, fn func(id string, v T, etag docstore.ETag) error) error {
	type item struct {
		id string
		e  *entry[T]
	}
	c.mu.RLock()
	var items []item
	for k, e := range c.docs {
		if k.pk == pk && c.live(e) {
			items = append(items, item{k.id, e})
		}
	}
	c.mu.RUnlock()
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
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, e := range c.docs {
		if c.live(e) {
			n++
		}
	}
	return n
}
