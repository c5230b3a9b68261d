package embedded_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/docstore/docstoretest"
	"github.com/contoso/eventpipeline/pkg/embedded"
)

// The writer half of TestCommittedSurvivesKill: it runs in a child process (the test binary itself),
// commits documents one by one, says which it committed on stdout, and is killed with SIGKILL by the
// parent at some moment, without Close.
func TestMain(m *testing.M) {
	if dir := os.Getenv("EMBEDDED_CRASH_WRITER"); dir != "" {
		crashWriter(dir)
		return
	}
	os.Exit(m.Run())
}

func crashWriter(dir string) {
	db, err := embedded.Open(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	c, err := embedded.NewCollection[docstoretest.Doc](db, "docs")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	for i := 0; ; i++ {
		id := strconv.Itoa(i)
		if _, err := c.Put(ctx, "p", id, docstoretest.Doc{ID: id, PK: "p", N: i}, docstore.PutOptions{}); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		// A write that is never committed: the kill may lose it, and that is allowed.
		c.Put(ctx, "p", "uncommitted-"+id, docstoretest.Doc{ID: "u", N: i}, docstore.PutOptions{})
		if i%2 == 0 {
			if err := db.Commit(); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("committed", i) // acknowledged: must survive
		}
	}
}

// A document whose commit returned survives SIGKILL of the process at any moment: Commit returns only
// once the transaction is written (and fsynced, which matters for a machine crash: not something a
// test can do here; the kill proves that nothing acknowledged is still only in the process). The
// first embedded store buffered writes in the process for up to 100 ms and lost acknowledged writes
// here.
func TestCommittedSurvivesKill(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	acknowledged := -1
	for round := range 5 {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "EMBEDDED_CRASH_WRITER="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var kill <-chan time.Time // armed at the first acknowledgement: then a kill at some moment
		lines := make(chan string)
		go func() {
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				if strings.HasPrefix(l, "error") {
					t.Fatalf("writer: %s", l)
				}
				n, _ := strconv.Atoi(strings.TrimPrefix(l, "committed "))
				acknowledged = max(acknowledged, n)
				if kill == nil {
					kill = time.After(time.Duration(20+round*37) * time.Millisecond)
				}
			case <-kill:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				for l := range lines { // what it said before it died
					if n, err := strconv.Atoi(strings.TrimPrefix(l, "committed ")); err == nil {
						acknowledged = max(acknowledged, n)
					}
				}
				break read
			}
		}
		_ = cmd.Wait()
		if acknowledged < 0 {
			t.Fatalf("round %d: the writer acknowledged nothing before the kill", round)
		}
		t.Logf("round %d: killed after %d acknowledged commits", round, acknowledged/2+1)
		// Every acknowledged document is there after the crash.
		db, err := embedded.Open(dir)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		c, err := embedded.NewCollection[docstoretest.Doc](db, "docs")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i <= acknowledged; i++ {
			if _, _, err := c.Get(context.Background(), "p", strconv.Itoa(i)); err != nil {
				t.Fatalf("round %d: document %d was acknowledged (committed) before the kill, but: %v", round, i, err)
			}
		}
		db.Close()
		// The next writer starts over from 0: its puts overwrite, and new acknowledgements come.
		acknowledged = -1
	}
}

// Concurrent writers that each commit share transactions (group commit), and every write is there
// after a restart.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	db, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := embedded.NewCollection[docstoretest.Doc](db, "docs")
	ctx := context.Background()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("%d-%d", w, i)
				if _, err := c.Put(ctx, "p", id, docstoretest.Doc{ID: id, N: i}, docstore.PutOptions{}); err != nil {
					t.Error(err)
				}
				if err := db.Commit(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, _ = embedded.Open(dir)
	defer db.Close()
	c, _ = embedded.NewCollection[docstoretest.Doc](db, "docs")
	if n := c.Len(); n != writers*each {
		t.Fatalf("%d documents after restart, want %d", n, writers*each)
	}
}

// A commit with nothing new does no I/O; reads see writes before they are committed.
func TestReadYourWritesBeforeCommit(t *testing.T) {
	db, _ := embedded.Open(t.TempDir())
	defer db.Close()
	c, _ := embedded.NewCollection[docstoretest.Doc](db, "docs")
	ctx := context.Background()
	e1, _ := c.Put(ctx, "p", "a", docstoretest.Doc{ID: "a", N: 1}, docstore.PutOptions{})
	got, e, err := c.Get(ctx, "p", "a")
	if err != nil || got.N != 1 || e != e1 {
		t.Fatalf("uncommitted read: %+v %q %v", got, e, err)
	}
	if err := db.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "p", "a", docstoretest.Doc{ID: "a", N: 2}, docstore.PutOptions{IfMatch: e1}); err != nil {
		t.Fatalf("conditional write on the committed version: %v", err)
	}
	var seen []int
	c.List(ctx, "p", func(id string, d docstoretest.Doc, _ docstore.ETag) error { seen = append(seen, d.N); return nil })
	if fmt.Sprint(seen) != "[2]" {
		t.Fatalf("List saw %v, want the uncommitted version [2]", seen)
	}
}

// Rewriting the same documents again and again leaves the log within about CompactMinBytes plus
// twice the live data: commits compact it when it holds more dead bytes than live ones. After a
// restart every document has its last version.
func TestLogStaysBounded(t *testing.T) {
	dir := t.TempDir()
	db, _ := embedded.Open(dir)
	c, _ := embedded.NewCollection[docstoretest.Doc](db, "docs")
	ctx := context.Background()
	payload := strings.Repeat("x", 1200)
	const docs, rounds = 2000, 16
	var largest int64
	for round := range rounds {
		for i := range docs {
			id := strconv.Itoa(i)
			if _, err := c.Put(ctx, "p", id, docstoretest.Doc{ID: id, N: round, Items: []string{payload}}, docstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if i%100 == 99 {
				if err := db.Commit(); err != nil {
					t.Fatal(err)
				}
			}
		}
		largest = max(largest, db.SizeOnDisk())
	}
	written := int64(docs * rounds * 1250)
	if bound := int64(embedded.CompactMinBytes) + 2*docs*1300; largest > bound {
		t.Fatalf("log reached %d bytes (%d written), want at most %d", largest, written, bound)
	}
	t.Logf("%d MB written, largest log %d MB", written>>20, largest>>20)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, _ = embedded.Open(dir)
	defer db.Close()
	c, _ = embedded.NewCollection[docstoretest.Doc](db, "docs")
	for i := range docs {
		got, _, err := c.Get(ctx, "p", strconv.Itoa(i))
		if err != nil || got.N != rounds-1 {
			t.Fatalf("document %d after restart: N=%d, %v; want %d", i, got.N, err, rounds-1)
		}
	}
}

// Expired documents leave the key directory at the sweep, and the next compaction drops their bytes;
// ETags still never repeat afterwards.
func TestSweepAndCompactDropExpired(t *testing.T) {
	dir := t.TempDir()
	db, _ := embedded.Open(dir)
	c, _ := embedded.NewCollection[docstoretest.Doc](db, "docs")
	ctx := context.Background()
	for i := range 1000 {
		id := strconv.Itoa(i)
		c.Put(ctx, "p", id, docstoretest.Doc{ID: id, Items: []string{strings.Repeat("y", 500)}}, docstore.PutOptions{TTL: time.Millisecond})
	}
	last, _ := c.Put(ctx, "p", "keep", docstoretest.Doc{ID: "keep"}, docstore.PutOptions{})
	if err := db.Commit(); err != nil {
		t.Fatal(err)
	}
	before := db.SizeOnDisk()
	time.Sleep(5 * time.Millisecond)
	db.Sweep()
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if n, after := c.Len(), db.SizeOnDisk(); n != 1 || after > before/10 {
		t.Fatalf("after sweep and compaction: %d documents, %d bytes (from %d); want 1 and a small log", n, after, before)
	}
	db.Close()
	db, _ = embedded.Open(dir)
	defer db.Close()
	c, _ = embedded.NewCollection[docstoretest.Doc](db, "docs")
	e, err := c.Put(ctx, "p", "new", docstoretest.Doc{ID: "new"}, docstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n1, _ := strconv.Atoi(strings.Trim(string(e), `"`)); n1 <= 1001 || e == last {
		t.Fatalf("ETag %s after compaction and restart: ETags must keep increasing (last was %s)", e, last)
	}
}

// A second process (here: a second Open) cannot open a directory in use; it is told which.
func TestOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	db, _ := embedded.Open(dir)
	defer db.Close()
	_, err := embedded.Open(dir)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v, want an error saying the directory is in use", err)
	}
}

// A data directory of the first embedded store (JSON-lines logs) is imported on first open.
func TestImportsLegacyLog(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "docs"), 0o755)
	var lines []string
	for _, l := range []map[string]any{
		{"pk": "p", "id": "a", "etag": 1, "doc": docstoretest.Doc{ID: "a", N: 1}},
		{"pk": "p", "id": "a", "etag": 3, "doc": docstoretest.Doc{ID: "a", N: 3}},
		{"pk": "p", "id": "gone", "etag": 2, "doc": docstoretest.Doc{ID: "gone"}},
		{"pk": "p", "id": "gone", "del": true},
	} {
		b, _ := json.Marshal(l)
		lines = append(lines, string(b))
	}
	path := filepath.Join(dir, "docs", "docs.jsonl")
	os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n{\"pk\":\"p\",\"id"), 0o644) // torn last line
	db, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := embedded.NewCollection[docstoretest.Doc](db, "docs")
	if err != nil {
		t.Fatal(err)
	}
	got, etag, err := c.Get(context.Background(), "p", "a")
	if err != nil || got.N != 3 || etag != `"3"` {
		t.Fatalf("imported a: %+v %q %v", got, etag, err)
	}
	if _, _, err := c.Get(context.Background(), "p", "gone"); !errors.Is(err, docstore.ErrNotFound) {
		t.Fatalf("deleted document imported: %v", err)
	}
	if _, err := os.Stat(path + ".imported"); err != nil {
		t.Fatalf("legacy log not renamed: %v", err)
	}
}
