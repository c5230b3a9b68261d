package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"
	"github.com/klauspost/compress/flate"
)

// Limits a file must respect. They keep a corrupt length field from allocating without bound: Capture
// itself writes blocks far smaller.
const (
	// DefaultMaxBlockBytes bounds one block, compressed and decompressed.
	DefaultMaxBlockBytes = 64 << 20
	// maxValueBytes bounds one string or bytes value (an event body is at most 1 MB in Event Hubs).
	maxValueBytes = 16 << 20
	// minRecordBytes is the smallest encoding of an EventData record (six one-byte fields).
	minRecordBytes = 6
)

// ReaderOptions describe the file being read.
type ReaderOptions struct {
	// Size is the file's length in bytes, when the source knows it (0: unknown). A source that ends
	// before Size bytes failed (a dropped connection), which is transient; a file whose Avro ends
	// early although every byte was read is truncated, which is ErrCorrupt.
	Size int64
	// MaxBlockBytes bounds one block (DefaultMaxBlockBytes when zero).
	MaxBlockBytes int
}

// Reader streams the records of one Capture file, block by block.
//
// It frames the Object Container File itself (header, blocks, sync markers) and uses hamba/avro for
// the header and the records. hamba's ocf.Decoder is not used for reading because it trusts length
// fields (a corrupt block size allocates that many bytes) and inflates blocks without a bound; this
// reader checks both and reports a file that ends inside a block as truncated.
type Reader struct {
	src    *countingReader
	size   int64
	max    int
	frame  *avro.Reader // the file
	block  *avro.Reader // the records of the current block
	schema avro.Schema
	codec  Codec
	sync   [16]byte

	*buffers

	plan    []fieldOp // how to decode each field of the file's schema, in order
	buf     recordBuffers
	blocks  int   // blocks started
	left    int64 // records left in the current block
	records int64 // records returned
	rec     Record
	err     error
}

var avroAPI = avro.Config{MaxByteSliceSize: maxValueBytes}.Freeze()

// buffers are a Reader's reusable memory (block buffers, the inflater, the body arena), recycled
// across files: a day is hundreds of files, each would otherwise grow its own.
type buffers struct {
	raw   []byte
	plain bytes.Buffer
	flate io.ReadCloser
	arena arena
}

var bufferPool = sync.Pool{New: func() any { return new(buffers) }}

// Close releases the Reader's buffers for other Readers. Records returned by NextBatch must not be
// used after it; Close is optional (without it the buffers are garbage collected).
func (r *Reader) Close() {
	if r.buffers != nil {
		bufferPool.Put(r.buffers)
		r.buffers = nil
	}
}

// NewReader reads the file header from r. A header that is not a Capture file's is ErrCorrupt.
func NewReader(r io.Reader, opts ReaderOptions) (*Reader, error) {
	rd := &Reader{src: &countingReader{r: r}, size: opts.Size, max: opts.MaxBlockBytes, buffers: bufferPool.Get().(*buffers)}
	if rd.max <= 0 {
		rd.max = DefaultMaxBlockBytes
	}
	rd.frame = avro.NewReader(rd.src, 64<<10, avro.WithReaderConfig(avroAPI))
	rd.block = avro.NewReader(nil, 0, avro.WithReaderConfig(avroAPI))
	if err := rd.header(); err != nil {
		rd.Close()
		return nil, err
	}
	return rd, nil
}

func (r *Reader) header() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = r.fail(fmt.Sprintf("header: %v", p))
		}
	}()
	var h ocf.Header
	r.frame.ReadVal(ocf.HeaderSchema, &h)
	if r.frame.Error != nil {
		return r.fail("header: " + r.frame.Error.Error())
	}
	if h.Magic != [4]byte{'O', 'b', 'j', 1} {
		return r.fail("not an Avro object container file (bad magic)")
	}
	// A schema cache per file: a file's schema must not redefine names for other files.
	s, err := avro.ParseBytesWithCache(h.Meta["avro.schema"], "", &avro.SchemaCache{})
	if err != nil {
		return r.fail("header: avro.schema: " + err.Error())
	}
	plan, err := planOf(s)
	if err != nil {
		return r.fail("not a Capture file: " + err.Error())
	}
	r.plan = plan
	switch c := string(h.Meta["avro.codec"]); c {
	case "", string(Null):
		r.codec = Null
	case string(Deflate):
		r.codec = Deflate
	default:
		return r.fail(fmt.Sprintf("codec %q is not supported (Capture writes deflate)", c))
	}
	r.schema, r.sync = s, h.Sync
	return nil
}

// Codec is the file's block compression.
func (r *Reader) Codec() Codec { return r.codec }

// Next advances to the next record. It returns false at the end of the file or on an error (Err).
func (r *Reader) Next() bool {
	r.buf.arena = nil
	return r.next(&r.rec)
}

// NextBatch decodes up to len(dst) records into dst and returns how many (0 at the end of the file
// or on an error, see Err). The records' Body slices point into memory the Reader reuses at the next
// NextBatch: copy what must outlive the batch. Every other field is the record's own. Decoding in
// batches costs no allocation for bodies, most of a Capture file's bytes.
func (r *Reader) NextBatch(dst []Record) int {
	if r.buffers == nil {
		return 0
	}
	r.arena.reset()
	r.buf.arena = &r.arena
	n := 0
	for n < len(dst) {
		if n > 0 {
			// Carry the enqueued time over, so unchanged text is not parsed again.
			dst[n].EnqueuedTimeUtc, dst[n].EnqueuedTime = dst[n-1].EnqueuedTimeUtc, dst[n-1].EnqueuedTime
		} else {
			dst[0].EnqueuedTimeUtc, dst[0].EnqueuedTime = r.rec.EnqueuedTimeUtc, r.rec.EnqueuedTime
		}
		if !r.next(&dst[n]) {
			break
		}
		n++
	}
	if n > 0 {
		r.rec.EnqueuedTimeUtc, r.rec.EnqueuedTime = dst[n-1].EnqueuedTimeUtc, dst[n-1].EnqueuedTime
	}
	return n
}

func (r *Reader) next(rec *Record) bool {
	if r.err != nil || r.buffers == nil {
		return false
	}
	for r.left == 0 {
		if !r.nextBlock() {
			return false
		}
	}
	if err := r.decode(rec); err != nil {
		r.err = err
		return false
	}
	r.left--
	if r.left == 0 {
		// Every byte of a block belongs to its records.
		r.block.Peek()
		if !errors.Is(r.block.Error, io.EOF) {
			r.err = r.fail(fmt.Sprintf("block %d: bytes left after its last record", r.blocks))
			return false
		}
	}
	r.records++
	return true
}

func (r *Reader) decode(rec *Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = r.fail(fmt.Sprintf("block %d: record %d: %v", r.blocks, r.records, p))
		}
	}()
	enq, enqTime := rec.EnqueuedTimeUtc, rec.EnqueuedTime
	*rec = Record{EnqueuedTimeUtc: enq, EnqueuedTime: enqTime}
	if derr := decodeRecord(r.block, r.plan, rec, &r.buf); derr != nil {
		return r.fail(fmt.Sprintf("block %d: record %d: %v", r.blocks, r.records, derr))
	}
	if rec.EnqueuedTimeUtc != enq || rec.EnqueuedTime.IsZero() {
		// Parse only when the text changes.
		rec.EnqueuedTime, _ = ParseEnqueuedTime(rec.EnqueuedTimeUtc)
	}
	return nil
}

// Record is the current record. Next overwrites it, but the strings, bytes and maps it holds are the
// record's own and stay valid.
func (r *Reader) Record() *Record { return &r.rec }

// Records is how many records Next returned.
func (r *Reader) Records() int64 { return r.records }

// Err is the error that stopped Next, nil at a clean end of file. It wraps ErrCorrupt when the file
// is malformed; any other error is the source's.
func (r *Reader) Err() error { return r.err }

func (r *Reader) nextBlock() bool {
	r.frame.Peek()
	if r.frame.Error != nil {
		if errors.Is(r.frame.Error, io.EOF) && r.src.err == io.EOF && (r.size <= 0 || r.src.n >= r.size) {
			return false // the end of the file, between blocks
		}
		r.err = r.fail(fmt.Sprintf("block %d: %v", r.blocks+1, r.frame.Error))
		return false
	}
	r.blocks++
	count := r.frame.ReadLong()
	size := r.frame.ReadLong()
	if r.frame.Error != nil {
		r.err = r.fail(fmt.Sprintf("block %d header: %v", r.blocks, r.frame.Error))
		return false
	}
	if count < 0 || size < 0 || size > int64(r.max) {
		r.err = r.fail(fmt.Sprintf("block %d: %d records in %d bytes (at most %d bytes)", r.blocks, count, size, r.max))
		return false
	}
	if cap(r.raw) < int(size) {
		r.raw = make([]byte, size)
	}
	r.raw = r.raw[:size]
	r.frame.Read(r.raw)
	var sync [16]byte
	r.frame.Read(sync[:])
	if r.frame.Error != nil {
		r.err = r.fail(fmt.Sprintf("block %d: %v", r.blocks, r.frame.Error))
		return false
	}
	if sync != r.sync {
		r.err = r.fail(fmt.Sprintf("block %d: sync marker mismatch", r.blocks))
		return false
	}
	data := r.raw
	if r.codec == Deflate {
		var err error
		if data, err = r.inflate(r.raw); err != nil {
			r.err = r.fail(fmt.Sprintf("block %d: deflate: %v", r.blocks, err))
			return false
		}
	}
	if count > int64(len(data)/minRecordBytes) {
		r.err = r.fail(fmt.Sprintf("block %d: %d records cannot fit in %d bytes", r.blocks, count, len(data)))
		return false
	}
	r.block.Reset(data)
	r.block.Error = nil
	r.left = count
	return true
}

func (r *Reader) inflate(b []byte) ([]byte, error) {
	br := bytes.NewReader(b)
	if r.flate == nil {
		r.flate = flate.NewReader(br)
	} else if err := r.flate.(flate.Resetter).Reset(br, nil); err != nil {
		return nil, err
	}
	r.plain.Reset()
	n, err := r.plain.ReadFrom(io.LimitReader(r.flate, int64(r.max)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(r.max) {
		return nil, fmt.Errorf("inflates to more than %d bytes", r.max)
	}
	// Decoded strings and bytes are copies (hamba copies them out), so the buffer is reused.
	return r.plain.Bytes(), nil
}

// fail classifies a failure: the source's error (transient) when the source failed or ended before
// the size it announced, ErrCorrupt otherwise.
func (r *Reader) fail(detail string) error {
	if r.src.err != nil && !errors.Is(r.src.err, io.EOF) {
		return fmt.Errorf("capture: reading the file after %d bytes: %w", r.src.n, r.src.err)
	}
	if r.size > 0 && r.src.n < r.size {
		return fmt.Errorf("capture: the source ended after %d of %d bytes: %w", r.src.n, r.size, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%w: %s", ErrCorrupt, detail)
}

// countingReader counts the bytes read and keeps the first error of the source.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// ReadAll reads every record of a file, calling fn for each. It is Reader's loop for callers that
// need nothing else.
func ReadAll(r io.Reader, opts ReaderOptions, fn func(*Record) error) (int64, error) {
	rd, err := NewReader(r, opts)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	for rd.Next() {
		if err := fn(rd.Record()); err != nil {
			return rd.Records(), err
		}
	}
	return rd.Records(), rd.Err()
}
