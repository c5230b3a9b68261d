package embedded

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A record is one write in the log:
//
//	crc32c (4 bytes, of everything after the 8-byte header) | length (4 bytes, of that rest)
//	kind (1 byte) | uvarint len + collection | uvarint len + pk | uvarint len + id
//	uvarint etag | varint expires (unix ns, 0 = never) | value (the rest)
//
// A torn or corrupt record at the end of the last segment (a crash during an append) is cut off
// when the log is opened; anywhere else it is an error.
type record struct {
	kind       byte
	collection string
	pk, id     string
	etag       uint64
	expires    int64
	value      []byte
}

// Record kinds.
const (
	kindPut byte = 1
	kindDel byte = 2
	kindSeq byte = 3 // a collection's ETag sequence, written on compaction (etag holds it)
)

const recordHeader = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends r's encoding to buf.
func appendRecord(buf []byte, kind byte, collection, pk, id string, etag uint64, expires int64, value []byte) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, recordHeader)...)
	buf = append(buf, kind)
	buf = binary.AppendUvarint(buf, uint64(len(collection)))
	buf = append(buf, collection...)
	buf = binary.AppendUvarint(buf, uint64(len(pk)))
	buf = append(buf, pk...)
	buf = binary.AppendUvarint(buf, uint64(len(id)))
	buf = append(buf, id...)
	buf = binary.AppendUvarint(buf, etag)
	buf = binary.AppendVarint(buf, expires)
	buf = append(buf, value...)
	body := buf[start+recordHeader:]
	binary.LittleEndian.PutUint32(buf[start:], crc32.Checksum(body, castagnoli))
	binary.LittleEndian.PutUint32(buf[start+4:], uint32(len(body)))
	return buf
}

var errCorrupt = errors.New("corrupt record")

// parseRecord decodes the body of a record (after its header). Strings are copied; value aliases b.
func parseRecord(b []byte) (record, error) {
	var r record
	if len(b) < 1 {
		return r, errCorrupt
	}
	r.kind, b = b[0], b[1:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	var ok1, ok2, ok3 bool
	r.collection, ok1 = str()
	r.pk, ok2 = str()
	r.id, ok3 = str()
	if !ok1 || !ok2 || !ok3 {
		return r, errCorrupt
	}
	etag, k := binary.Uvarint(b)
	if k <= 0 {
		return r, errCorrupt
	}
	b = b[k:]
	exp, k := binary.Varint(b)
	if k <= 0 {
		return r, errCorrupt
	}
	r.etag, r.expires, r.value = etag, exp, b[k:]
	return r, nil
}

// location is where a record is: segment, offset and length (header included).
type location struct {
	seg uint32
	off int64
	n   int32
}

// pendingRecord is a record encoded into a commit's buffer (off is relative to the buffer);
// placedRecord is a record at its place in the log (from: where it was before a compaction moved
// it); liveRecord is a live document's record, to copy on compaction.
type (
	pendingRecord struct {
		pk, id string
		off    int64
		n      int32
	}
	placedRecord struct {
		pk, id   string
		at, from location
	}
	liveRecord struct {
		pk, id string
		at     location
	}
)

// replayed is what opening the log found for one collection: its live documents and its sequence.
type replayed struct {
	docs map[string]map[string]meta // pk -> id -> the latest record
	seq  uint64
}

// segments is the log: numbered files in one directory, appended to by one writer (the commit leader)
// and read concurrently. mu is held for reading by every reader across finding a record's location and
// reading it, and for writing only while a compaction swaps segments, so a reader never reads from a
// removed file.
type segments struct {
	dir string

	mu     sync.RWMutex
	files  map[uint32]*os.File
	sizes  map[uint32]int64
	active uint32

	found    map[string]*replayed // by collection, until each is registered
	readOnly bool
}

func segName(n uint32) string { return fmt.Sprintf("%08d.log", n) }

func openSegments(dir string, readOnly bool) (*segments, error) {
	s := &segments{dir: dir, files: map[uint32]*os.File{}, sizes: map[uint32]int64{}, found: map[string]*replayed{}, readOnly: readOnly}
	ents, err := os.ReadDir(dir)
	if readOnly && errors.Is(err, os.ErrNotExist) {
		return s, nil // nothing was ever written
	}
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".log.tmp") {
			if !readOnly {
				os.Remove(filepath.Join(dir, name)) // an unfinished compaction
			}
			continue
		}
		if !strings.HasSuffix(name, ".log") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, ".log"), 10, 32)
		if err != nil {
			continue
		}
		ids = append(ids, uint32(n))
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		if readOnly {
			return s, nil
		}
		ids = []uint32{1}
	}
	flag := os.O_CREATE | os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	for i, id := range ids {
		f, err := os.OpenFile(filepath.Join(dir, segName(id)), flag, 0o644)
		if err != nil {
			s.close()
			return nil, err
		}
		s.files[id] = f
		size, err := s.load(id, f, i == len(ids)-1)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("%s: %w", segName(id), err)
		}
		s.sizes[id] = size
	}
	s.active = ids[len(ids)-1]
	return s, nil
}

// load replays segment id into s.found and returns its size. A bad record ends the last segment
// (it is truncated there: a crash during an append); anywhere else it is corruption.
func (s *segments) load(id uint32, f *os.File, last bool) (int64, error) {
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	hdr := make([]byte, recordHeader)
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if err == io.EOF {
				return off, nil
			}
			return s.torn(f, off, last, err)
		}
		n := binary.LittleEndian.Uint32(hdr[4:])
		if n > 1<<30 {
			return s.torn(f, off, last, errCorrupt)
		}
		body = slices.Grow(body[:0], int(n))[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return s.torn(f, off, last, err)
		}
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr) {
			return s.torn(f, off, last, errCorrupt)
		}
		rec, err := parseRecord(body)
		if err != nil {
			return s.torn(f, off, last, err)
		}
		s.apply(rec, location{seg: id, off: off, n: int32(recordHeader + n)})
		off += int64(recordHeader + n)
	}
}

func (s *segments) torn(f *os.File, off int64, last bool, err error) (int64, error) {
	if !last {
		return 0, fmt.Errorf("record at offset %d: %w", off, err)
	}
	if s.readOnly {
		return off, nil // a writer may be appending it right now
	}
	if err := f.Truncate(off); err != nil {
		return 0, err
	}
	return off, nil
}

func (s *segments) apply(r record, at location) {
	c := s.found[r.collection]
	if c == nil {
		c = &replayed{docs: map[string]map[string]meta{}}
		s.found[r.collection] = c
	}
	switch r.kind {
	case kindSeq:
		c.seq = max(c.seq, r.etag)
	case kindDel:
		if ids := c.docs[r.pk]; ids != nil {
			delete(ids, r.id)
			if len(ids) == 0 {
				delete(c.docs, r.pk)
			}
		}
	case kindPut:
		c.seq = max(c.seq, r.etag)
		ids := c.docs[r.pk]
		if ids == nil {
			ids = map[string]meta{}
			c.docs[r.pk] = ids
		}
		ids[r.id] = meta{at: at, etag: r.etag, expires: r.expires}
	}
}

// adopt hands over what the replay found for a collection (empty when it has no records).
func (s *segments) adopt(collection string) *replayed {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.found[collection]
	delete(s.found, collection)
	if c == nil {
		c = &replayed{docs: map[string]map[string]meta{}}
	}
	return c
}

// read returns the record at. The caller holds s.mu for reading.
func (s *segments) read(at location) (record, error) {
	f := s.files[at.seg]
	if f == nil {
		return record{}, fmt.Errorf("segment %d is gone", at.seg)
	}
	b := make([]byte, at.n)
	if _, err := f.ReadAt(b, at.off); err != nil {
		return record{}, err
	}
	if crc32.Checksum(b[recordHeader:], castagnoli) != binary.LittleEndian.Uint32(b) {
		return record{}, fmt.Errorf("segment %d offset %d: %w", at.seg, at.off, errCorrupt)
	}
	return parseRecord(b[recordHeader:])
}

// append writes buf at the end of the active segment (moving to a new one past SegmentBytes) and
// syncs it; on failure the segment is cut back to where it was. It returns where buf starts. Only the
// commit leader calls it.
func (s *segments) append(buf []byte) (location, error) {
	s.mu.RLock()
	id, size := s.active, s.sizes[s.active]
	f := s.files[id]
	s.mu.RUnlock()
	if size > 0 && size+int64(len(buf)) > SegmentBytes {
		nf, err := s.create(id + 1)
		if err != nil {
			return location{}, err
		}
		s.mu.Lock()
		id, size, f = id+1, 0, nf
		s.files[id], s.sizes[id], s.active = nf, 0, id
		s.mu.Unlock()
	}
	if _, err := f.WriteAt(buf, size); err != nil {
		_ = f.Truncate(size)
		return location{}, err
	}
	if err := syscall.Fdatasync(int(f.Fd())); err != nil {
		_ = f.Truncate(size)
		return location{}, err
	}
	s.mu.Lock()
	s.sizes[id] = size + int64(len(buf))
	s.mu.Unlock()
	return location{seg: id, off: size}, nil
}

// create makes a new empty segment file durably (the directory entry synced too).
func (s *segments) create(id uint32) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, segName(id)), os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *segments) size() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, v := range s.sizes {
		n += v
	}
	return n
}

// compaction writes the live records into a new segment numbered after every existing one; finish
// makes it the active segment and removes the older ones, oldest first (so a crash at any point leaves
// a newest-suffix of segments that replays to the same state).
type compaction struct {
	s   *segments
	id  uint32
	f   *os.File
	w   *bufio.Writer
	off int64
}

func (s *segments) startCompaction() (*compaction, error) {
	s.mu.RLock()
	id := s.active + 1
	s.mu.RUnlock()
	tmp := filepath.Join(s.dir, segName(id)+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &compaction{s: s, id: id, f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

// copy copies the record of a live document (read from its segment) and returns its new place.
func (c *compaction) copy(lr liveRecord) (location, error) {
	c.s.mu.RLock()
	f := c.s.files[lr.at.seg]
	b := make([]byte, lr.at.n)
	var err error
	if f == nil {
		err = fmt.Errorf("segment %d is gone", lr.at.seg)
	} else {
		_, err = f.ReadAt(b, lr.at.off)
	}
	c.s.mu.RUnlock()
	if err != nil {
		return location{}, err
	}
	if _, err := c.w.Write(b); err != nil {
		return location{}, err
	}
	at := location{seg: c.id, off: c.off, n: lr.at.n}
	c.off += int64(lr.at.n)
	return at, nil
}

// sequence records a collection's ETag sequence, so that ETags never repeat after deleted documents'
// records are dropped.
func (c *compaction) sequence(collection string, seq uint64) error {
	b := appendRecord(nil, kindSeq, collection, "", "", seq, 0, nil)
	_, err := c.w.Write(b)
	c.off += int64(len(b))
	return err
}

func (c *compaction) abort() {
	c.f.Close()
	os.Remove(c.f.Name())
}

// finish syncs the new segment, renames it into place, and, under the write lock, makes it active,
// lets the collections point at the copies (relocate) and removes the old segments.
func (c *compaction) finish(relocate func()) error {
	if err := c.w.Flush(); err != nil {
		c.abort()
		return err
	}
	if err := c.f.Sync(); err != nil {
		c.abort()
		return err
	}
	final := filepath.Join(c.s.dir, segName(c.id))
	if err := os.Rename(c.f.Name(), final); err != nil {
		c.abort()
		return err
	}
	if err := syncDir(c.s.dir); err != nil {
		return err
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	old := make([]uint32, 0, len(s.files))
	for id := range s.files {
		old = append(old, id)
	}
	slices.Sort(old)
	s.files[c.id], s.sizes[c.id], s.active = c.f, c.off, c.id
	relocate()
	var errs []error
	for _, id := range old {
		errs = append(errs, s.files[id].Close(), os.Remove(filepath.Join(s.dir, segName(id))))
		delete(s.files, id)
		delete(s.sizes, id)
	}
	errs = append(errs, syncDir(s.dir))
	return errors.Join(errs...)
}

func (s *segments) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for id, f := range s.files {
		errs = append(errs, f.Close())
		delete(s.files, id)
	}
	return errors.Join(errs...)
}
