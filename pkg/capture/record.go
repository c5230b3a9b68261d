package capture

import (
	"errors"
	"fmt"

	"github.com/hamba/avro/v2"
)

// The record decoder reads EventData with hamba's primitive readers, following the writer schema of
// the file (field order, union branches), instead of hamba's reflection decoder: it builds nothing it
// does not need (SystemProperties are skipped, empty Properties stay nil), and it checks the reader's
// error inside every loop, so a corrupt item count cannot spin (hamba's own skip decoder loops over a
// map's announced count without looking at errors).

type opKind int

const (
	opSequenceNumber opKind = iota
	opOffset
	opEnqueuedTime
	opProperties
	opBody
	opSkip
)

// fieldOp says how to read one field of the file's record schema.
type fieldOp struct {
	kind     opKind
	schema   avro.Schema // opSkip
	branches []avro.Type // opProperties values and opBody when they are unions
	value    avro.Type   // opProperties values when they are not a union
}

// maxValues bounds the values one record may hold (map entries, array items, skipped values).
const maxValues = 1 << 20

var errTooManyValues = errors.New("more values than any event holds")

// planOf checks that s is Capture's EventData (the fields this package reads, with their types; other
// fields are skipped) and returns how to read it.
func planOf(s avro.Schema) ([]fieldOp, error) {
	rs, ok := s.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("the schema is a %s, not a record", s.Type())
	}
	var plan []fieldOp
	need := map[string]bool{"SequenceNumber": true, "Offset": true, "EnqueuedTimeUtc": true, "Properties": true, "Body": true}
	for _, f := range rs.Fields() {
		t := f.Type()
		op := fieldOp{kind: opSkip, schema: t}
		switch f.Name() {
		case "SequenceNumber":
			if t.Type() != avro.Long {
				return nil, fmt.Errorf("field SequenceNumber is %s, want long", t.Type())
			}
			op = fieldOp{kind: opSequenceNumber}
		case "Offset", "EnqueuedTimeUtc":
			if t.Type() != avro.String {
				return nil, fmt.Errorf("field %s is %s, want string", f.Name(), t.Type())
			}
			op = fieldOp{kind: opOffset}
			if f.Name() == "EnqueuedTimeUtc" {
				op.kind = opEnqueuedTime
			}
		case "Properties":
			m, ok := t.(*avro.MapSchema)
			if !ok {
				return nil, fmt.Errorf("field Properties is %s, want a map", t.Type())
			}
			op = fieldOp{kind: opProperties}
			if u, ok := m.Values().(*avro.UnionSchema); ok {
				for _, b := range u.Types() {
					if !primitive(b.Type()) {
						return nil, fmt.Errorf("Properties values may be %s, want primitive types", b.Type())
					}
					op.branches = append(op.branches, b.Type())
				}
			} else if primitive(m.Values().Type()) {
				op.value = m.Values().Type()
			} else {
				return nil, fmt.Errorf("Properties values are %s, want primitive types", m.Values().Type())
			}
		case "Body":
			op = fieldOp{kind: opBody}
			switch b := t.(type) {
			case *avro.UnionSchema:
				for _, br := range b.Types() {
					if br.Type() != avro.Null && br.Type() != avro.Bytes {
						return nil, fmt.Errorf("field Body may be %s, want bytes or null", br.Type())
					}
					op.branches = append(op.branches, br.Type())
				}
			default:
				if t.Type() != avro.Bytes {
					return nil, fmt.Errorf("field Body is %s, want bytes or [null, bytes]", t.Type())
				}
			}
		default:
			if err := skippable(t, 0); err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name(), err)
			}
		}
		delete(need, f.Name())
		plan = append(plan, op)
	}
	for _, name := range []string{"SequenceNumber", "Offset", "EnqueuedTimeUtc", "Properties", "Body"} {
		if need[name] {
			return nil, fmt.Errorf("field %s is missing", name)
		}
	}
	return plan, nil
}

func primitive(t avro.Type) bool {
	switch t {
	case avro.Null, avro.Boolean, avro.Int, avro.Long, avro.Float, avro.Double, avro.String, avro.Bytes:
		return true
	}
	return false
}

// skippable checks that skip can read values of s (every Avro type, recursive named types bounded).
func skippable(s avro.Schema, depth int) error {
	if depth > 32 {
		return errors.New("schema nested too deeply")
	}
	switch x := s.(type) {
	case *avro.PrimitiveSchema, *avro.NullSchema, *avro.FixedSchema, *avro.EnumSchema:
		return nil
	case *avro.ArraySchema:
		return skippable(x.Items(), depth+1)
	case *avro.MapSchema:
		return skippable(x.Values(), depth+1)
	case *avro.UnionSchema:
		for _, t := range x.Types() {
			if err := skippable(t, depth+1); err != nil {
				return err
			}
		}
		return nil
	case *avro.RecordSchema:
		for _, f := range x.Fields() {
			if err := skippable(f.Type(), depth+1); err != nil {
				return err
			}
		}
		return nil
	case *avro.RefSchema:
		return nil // a named type already checked where it was defined
	}
	return fmt.Errorf("unsupported schema type %s", s.Type())
}

// recordBuffers is where decodeRecord puts what it reads: bodies in an arena when batching (nil:
// each body allocated), the enqueued time's text reused while it does not change.
type recordBuffers struct {
	arena   *arena
	enqText []byte
}

func decodeRecord(r *avro.Reader, plan []fieldOp, rec *Record, buf *recordBuffers) error {
	budget := maxValues
	for i := range plan {
		op := &plan[i]
		switch op.kind {
		case opSequenceNumber:
			rec.SequenceNumber = r.ReadLong()
		case opOffset:
			rec.Offset = r.ReadString()
		case opEnqueuedTime:
			// Capture writes whole seconds: consecutive records mostly carry the same text, so the
			// previous string is kept instead of allocating an equal one.
			b, err := readValue(r, buf.enqText[:0])
			if err != nil {
				return fmt.Errorf("EnqueuedTimeUtc: %w", err)
			}
			buf.enqText = b
			if string(b) != rec.EnqueuedTimeUtc {
				rec.EnqueuedTimeUtc = string(b)
			}
		case opProperties:
			m, err := readProperties(r, op, &budget)
			if err != nil {
				return fmt.Errorf("Properties: %w", err)
			}
			rec.Properties = m
		case opBody:
			t := avro.Bytes
			if op.branches != nil {
				var err error
				if t, err = branch(r, op.branches); err != nil {
					return fmt.Errorf("Body: %w", err)
				}
			}
			if t == avro.Bytes {
				b, err := readBody(r, buf.arena)
				if err != nil {
					return fmt.Errorf("Body: %w", err)
				}
				rec.Body = b
			}
		case opSkip:
			if err := skip(r, op.schema, &budget, 0); err != nil {
				return err
			}
		}
		if r.Error != nil {
			return r.Error
		}
	}
	return nil
}

// readValue reads a string or bytes value into dst (grown as needed).
func readValue(r *avro.Reader, dst []byte) ([]byte, error) {
	n := r.ReadLong()
	if r.Error != nil {
		return dst, r.Error
	}
	if n < 0 || n > maxValueBytes {
		return dst, fmt.Errorf("a string or bytes of %d bytes", n)
	}
	if cap(dst) < int(n) {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	r.Read(dst)
	return dst, r.Error
}

// readBody reads a body into the arena, or into its own slice without one.
func readBody(r *avro.Reader, a *arena) ([]byte, error) {
	n := r.ReadLong()
	if r.Error != nil {
		return nil, r.Error
	}
	if n < 0 || n > maxValueBytes {
		return nil, fmt.Errorf("a body of %d bytes", n)
	}
	var b []byte
	if a != nil {
		b = a.alloc(int(n))
	} else {
		b = make([]byte, n)
	}
	r.Read(b)
	return b, r.Error
}

// arena hands out byte slices from large chunks that are reused after reset: a batch's bodies cost
// no allocation once the chunks exist. A slice is never moved, so earlier slices stay valid until
// reset.
type arena struct {
	chunks [][]byte
	cur    int
}

const arenaChunk = 256 << 10

func (a *arena) alloc(n int) []byte {
	for {
		if a.cur < len(a.chunks) {
			c := a.chunks[a.cur]
			if cap(c)-len(c) >= n {
				a.chunks[a.cur] = c[:len(c)+n]
				return c[len(c) : len(c)+n : len(c)+n]
			}
			a.cur++
			continue
		}
		a.chunks = append(a.chunks, make([]byte, 0, max(arenaChunk, n)))
	}
}

func (a *arena) reset() {
	for i := range a.chunks {
		a.chunks[i] = a.chunks[i][:0]
	}
	a.cur = 0
}

func branch(r *avro.Reader, branches []avro.Type) (avro.Type, error) {
	i := r.ReadLong()
	if r.Error != nil {
		return "", r.Error
	}
	if i < 0 || i >= int64(len(branches)) {
		return "", fmt.Errorf("union branch %d of %d", i, len(branches))
	}
	return branches[i], nil
}

// readProperties reads a map of primitive values; an empty map is nil (most events have none).
func readProperties(r *avro.Reader, op *fieldOp, budget *int) (map[string]any, error) {
	var m map[string]any
	for {
		n := r.ReadLong()
		if r.Error != nil {
			return nil, r.Error
		}
		if n == 0 {
			return m, nil
		}
		if n < 0 {
			n = -n
			r.SkipLong() // the block's size in bytes
		}
		if n > int64(*budget) {
			return nil, errTooManyValues
		}
		*budget -= int(n)
		if m == nil {
			m = make(map[string]any, n)
		}
		for range n {
			k := r.ReadString()
			t := op.value
			if op.branches != nil {
				var err error
				if t, err = branch(r, op.branches); err != nil {
					return nil, err
				}
			}
			var v any
			switch t {
			case avro.Null:
			case avro.Boolean:
				v = r.ReadBool()
			case avro.Int:
				v = int64(r.ReadInt())
			case avro.Long:
				v = r.ReadLong()
			case avro.Float:
				v = float64(r.ReadFloat())
			case avro.Double:
				v = r.ReadDouble()
			case avro.String:
				v = r.ReadString()
			case avro.Bytes:
				v = r.ReadBytes()
			}
			if r.Error != nil {
				return nil, r.Error
			}
			m[k] = v
		}
	}
}

// skip reads past one value of schema s, checking the reader's error and the value budget in every
// loop.
func skip(r *avro.Reader, s avro.Schema, budget *int, depth int) error {
	*budget--
	if *budget < 0 {
		return errTooManyValues
	}
	if depth > 64 {
		return errors.New("values nested too deeply")
	}
	switch x := s.(type) {
	case *avro.PrimitiveSchema:
		switch x.Type() {
		case avro.Boolean:
			r.SkipBool()
		case avro.Int:
			r.SkipInt()
		case avro.Long:
			r.SkipLong()
		case avro.Float:
			r.SkipNBytes(4)
		case avro.Double:
			r.SkipNBytes(8)
		case avro.String, avro.Bytes:
			return skipBytes(r)
		}
	case *avro.NullSchema:
	case *avro.FixedSchema:
		r.SkipNBytes(x.Size())
	case *avro.EnumSchema:
		r.SkipInt()
	case *avro.ArraySchema:
		return skipBlocks(r, budget, func() error { return skip(r, x.Items(), budget, depth+1) })
	case *avro.MapSchema:
		return skipBlocks(r, budget, func() error {
			if err := skipBytes(r); err != nil {
				return err
			}
			return skip(r, x.Values(), budget, depth+1)
		})
	case *avro.UnionSchema:
		i := r.ReadLong()
		if r.Error != nil {
			return r.Error
		}
		if i < 0 || i >= int64(len(x.Types())) {
			return fmt.Errorf("union branch %d of %d", i, len(x.Types()))
		}
		return skip(r, x.Types()[i], budget, depth+1)
	case *avro.RecordSchema:
		for _, f := range x.Fields() {
			if err := skip(r, f.Type(), budget, depth+1); err != nil {
				return err
			}
		}
	case *avro.RefSchema:
		return skip(r, x.Schema(), budget, depth+1)
	default:
		return fmt.Errorf("cannot skip a %s", s.Type())
	}
	return r.Error
}

func skipBytes(r *avro.Reader) error {
	n := r.ReadLong()
	if r.Error != nil {
		return r.Error
	}
	if n < 0 || n > maxValueBytes {
		return fmt.Errorf("a string or bytes of %d bytes", n)
	}
	r.SkipNBytes(int(n))
	return r.Error
}

// skipBlocks reads the blocks of an array or map, calling item for each item.
func skipBlocks(r *avro.Reader, budget *int, item func() error) error {
	for {
		n := r.ReadLong()
		if r.Error != nil {
			return r.Error
		}
		if n == 0 {
			return nil
		}
		if n < 0 {
			// A negative count is followed by the block's size in bytes: skip it whole.
			size := r.ReadLong()
			if r.Error != nil {
				return r.Error
			}
			if size < 0 || size > DefaultMaxBlockBytes {
				return fmt.Errorf("a block of %d bytes", size)
			}
			r.SkipNBytes(int(size))
			if r.Error != nil {
				return r.Error
			}
			continue
		}
		if n > int64(*budget) {
			return errTooManyValues
		}
		for range n {
			if err := item(); err != nil {
				return err
			}
		}
	}
}
