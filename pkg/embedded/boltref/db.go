// Package boltref is the embedded store built on bbolt, kept as the reference the product's store
// (pkg/embedded) is measured against in the side-by-side benchmark (handlers.BenchmarkRecentlyViewedStores):
// the same contract, group commit and bounded cache, with one bbolt transaction per commit. It is
// not used to store data; docs/performance.md has the measurement that made the project keep its own
// log instead.
package boltref

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Tunables of the store.
const (
	// CacheEntries bounds the decoded documents each collection keeps in memory.
	CacheEntries = 16384
	// SweepInterval is how often expired documents are deleted from the file.
	SweepInterval = 10 * time.Minute
	// FileName is the database file under the directory.
	FileName = "embedded.db"
)

// DB is a directory holding the database of every collection.
type DB struct {
	dir  string
	bolt *bolt.DB
	now  func() time.Time

	mu   sync.Mutex
	cols map[string]collection

	// Group commit: gen counts writes, done is the gen the last successful commit covered.
	cmu        sync.Mutex
	cond       *sync.Cond
	gen, done  uint64
	committing bool
	closed     bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// collection is what DB needs of a Collection[T] to commit and sweep it.
type collection interface {
	// take moves the pending writes to in flight and returns a function that writes them into tx.
	take() func(tx *bolt.Tx) error
	// settle ends the in-flight writes: committed (cached) or, on failure, pending again.
	settle(committed bool)
	sweep(now int64) error
}

// Open opens (creating if needed) the store rooted at dir.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("boltref.Open: %w", err)
	}
	path := filepath.Join(dir, FileName)
	b, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("boltref.Open: %s is in use by another process (one handler per LOCAL_DATA_DIR)", path)
	} else if err != nil {
		return nil, fmt.Errorf("boltref.Open %s: %w", path, err)
	}
	db := &DB{dir: dir, bolt: b, now: time.Now, cols: map[string]collection{}, stop: make(chan struct{})}
	db.cond = sync.NewCond(&db.cmu)
	db.wg.Add(1)
	go db.sweeper()
	return db, nil
}

// Dir is the root directory.
func (db *DB) Dir() string { return db.dir }

// SizeOnDisk is the size of the database file in bytes.
func (db *DB) SizeOnDisk() int64 {
	fi, err := os.Stat(db.bolt.Path())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// wrote records a write; Commit makes it durable.
func (db *DB) wrote() {
	db.cmu.Lock()
	db.gen++
	db.cmu.Unlock()
}

// Commit makes every write done before it was called durable: one bbolt transaction, fsynced, for all
// collections. Concurrent calls share a transaction: a caller whose writes an ongoing commit does not
// cover waits for it and then commits the rest (with anything else that arrived meanwhile).
func (db *DB) Commit() error {
	db.cmu.Lock()
	target := db.gen
	for {
		if db.done >= target {
			db.cmu.Unlock()
			return nil
		}
		if db.closed {
			db.cmu.Unlock()
			return errors.New("boltref: commit after close")
		}
		if !db.committing {
			break
		}
		db.cond.Wait()
	}
	db.committing = true
	covered := db.gen
	db.cmu.Unlock()

	err := db.commit()

	db.cmu.Lock()
	db.committing = false
	if err == nil {
		db.done = max(db.done, covered)
	}
	db.cond.Broadcast()
	db.cmu.Unlock()
	if err != nil {
		return fmt.Errorf("boltref: commit %s: %w", db.bolt.Path(), err)
	}
	return nil
}

func (db *DB) commit() error {
	db.mu.Lock()
	cols := make([]collection, 0, len(db.cols))
	for _, c := range db.cols {
		cols = append(cols, c)
	}
	db.mu.Unlock()
	writes := make([]func(*bolt.Tx) error, 0, len(cols))
	for _, c := range cols {
		if w := c.take(); w != nil {
			writes = append(writes, w)
		}
	}
	var err error
	if len(writes) > 0 {
		err = db.bolt.Update(func(tx *bolt.Tx) error {
			for _, w := range writes {
				if err := w(tx); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for _, c := range cols {
		c.settle(err == nil)
	}
	return err
}

// Flush is Commit (the name the first store used).
func (db *DB) Flush() error { return db.Commit() }

func (db *DB) sweeper() {
	defer db.wg.Done()
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			_ = db.Sweep()
		}
	}
}

// Sweep deletes expired documents from the file now.
func (db *DB) Sweep() error {
	db.mu.Lock()
	cols := make([]collection, 0, len(db.cols))
	for _, c := range db.cols {
		cols = append(cols, c)
	}
	db.mu.Unlock()
	now := db.now().UnixNano()
	var errs []error
	for _, c := range cols {
		errs = append(errs, c.sweep(now))
	}
	return errors.Join(errs...)
}

// Close commits what is pending and closes the database.
func (db *DB) Close() error {
	db.cmu.Lock()
	if db.closed {
		db.cmu.Unlock()
		return nil
	}
	db.cmu.Unlock()
	err := db.Commit()
	db.cmu.Lock()
	db.closed = true
	db.cond.Broadcast()
	db.cmu.Unlock()
	close(db.stop)
	db.wg.Wait()
	return errors.Join(err, db.bolt.Close())
}
