// Package embedded is the local default for every store when no Azure service is configured: real,
// durable implementations (not mocks) that keep their data under LOCAL_DATA_DIR, so the local run
// and the contract tests exercise the same behaviour as Cosmos DB.
//
// Documents live in memory and are persisted to an append-only JSON-lines log per collection
// (<dir>/docs/<collection>.jsonl). Writes mark documents dirty; a flusher appends the latest version
// of each dirty document every FlushInterval and on Close, so a hot document written many times
// between flushes costs one log line. Opening replays the log and compacts it when most lines are
// superseded. A process killed without Close loses at most the last FlushInterval of writes; this is
// the local default only: production state is in Cosmos DB.
package embedded

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FlushInterval is how often dirty documents are appended to their log.
const FlushInterval = 100 * time.Millisecond

// DB is a directory of collections with one background flusher.
type DB struct {
	dir  string
	mu   sync.Mutex
	cols map[string]flusher
	stop chan struct{}
	done chan struct{}
	now  func() time.Time
}

type flusher interface {
	flush() error
	closeLog() error
}

// Open opens (creating if needed) the store rooted at dir.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
		return nil, fmt.Errorf("embedded.Open: %w", err)
	}
	db := &DB{dir: dir, cols: map[string]flusher{}, stop: make(chan struct{}), done: make(chan struct{}), now: time.Now}
	go db.loop()
	return db, nil
}

func (db *DB) loop() {
	defer close(db.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			_ = db.Flush()
		}
	}
}

// Flush writes every dirty document to its log now.
func (db *DB) Flush() error {
	db.mu.Lock()
	cols := make([]flusher, 0, len(db.cols))
	for _, c := range db.cols {
		cols = append(cols, c)
	}
	db.mu.Unlock()
	var errs []error
	for _, c := range cols {
		errs = append(errs, c.flush())
	}
	return errors.Join(errs...)
}

// Close flushes and closes every collection log.
func (db *DB) Close() error {
	select {
	case <-db.stop:
		return nil
	default:
	}
	close(db.stop)
	<-db.done
	err := db.Flush()
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, c := range db.cols {
		err = errors.Join(err, c.closeLog())
	}
	return err
}

// Dir is the root directory.
func (db *DB) Dir() string { return db.dir }

// logLine is one record of a collection log.
type logLine struct {
	PK      string          `json:"pk"`
	ID      string          `json:"id"`
	ETag    uint64          `json:"etag"`
	Expires int64           `json:"exp,omitempty"` // unix nanoseconds; 0 = never
	Deleted bool            `json:"del,omitempty"`
	Doc     json.RawMessage `json:"doc,omitempty"`
}

func openLog(path string) (*os.File, *bufio.Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, bufio.NewWriterSize(f, 256<<10), nil
}
