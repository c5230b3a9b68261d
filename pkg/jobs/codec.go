package jobs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The stored form of a Partial: a small binary format rather than gob or JSON, because a day has
// thousands of files and their hashes are most of the bytes (8 raw bytes each, where gob would spend
// 9 and reflection). Every length is checked on decoding: a damaged partial is an error (the file is
// read again), never a panic or a huge allocation.
//
//	"CRP" version(1 byte)
//	file, partition (string), window (varint unix seconds)
//	counts: events clicks views addedToCart purchased skipped poison (uvarint), announced (varint),
//	        reasons (uvarint n, then n × string, uvarint)
//	products (uvarint n, then n × id, category, views, addedToCart, purchased, sketch, sketch)
//	sessions (uvarint n, then n × key (8 bytes), uvarint m, m × product index delta (uvarint))
//	viewers sketch, sessions sketch
//
// string: uvarint length + bytes; sketch: precision (1 byte), kind (0: exact, 1: registers), then
// uvarint n + n × 8-byte hash, or 2^precision register bytes.

var partialMagic = []byte("CRP")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendSketch(b []byte, s *Sketch) []byte {
	b = append(b, s.P)
	if s.Regs != nil {
		b = append(b, 1)
		return append(b, s.Regs...)
	}
	b = append(b, 0)
	b = binary.AppendUvarint(b, uint64(len(s.Exact)))
	for _, h := range s.Exact {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	return b
}

// encode serializes a partial.
func (p *Partial) encode() ([]byte, error) {
	size := 256 + 16*len(p.Products) + 2*int(p.Counts.Views)*8 + len(p.Sessions)*16
	b := make([]byte, 0, size)
	b = append(b, partialMagic...)
	b = append(b, byte(partialVersion))
	b = appendString(b, p.File)
	b = appendString(b, p.Partition)
	b = binary.AppendVarint(b, p.Window.Unix())
	c := &p.Counts
	for _, v := range []int64{c.Events, c.Clicks, c.Views, c.AddedToCart, c.Purchased, c.Skipped, c.Poison} {
		if v < 0 {
			return nil, fmt.Errorf("encode partial %s: negative count", p.File)
		}
		b = binary.AppendUvarint(b, uint64(v))
	}
	b = binary.AppendVarint(b, c.Announced)
	b = binary.AppendUvarint(b, uint64(len(c.PoisonReasons)))
	for _, k := range sortedKeys(c.PoisonReasons) {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(c.PoisonReasons[k]))
	}
	b = binary.AppendUvarint(b, uint64(len(p.Products)))
	for i := range p.Products {
		ps := &p.Products[i]
		b = appendString(b, ps.ID)
		b = appendString(b, ps.Category)
		b = binary.AppendUvarint(b, uint64(ps.Views))
		b = binary.AppendUvarint(b, uint64(ps.AddedToCart))
		b = binary.AppendUvarint(b, uint64(ps.Purchased))
		b = appendSketch(b, &ps.Viewers)
		b = appendSketch(b, &ps.Sessions)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Sessions)))
	for _, f := range p.Sessions {
		b = binary.LittleEndian.AppendUint64(b, f.Key)
		b = binary.AppendUvarint(b, uint64(len(f.Products)))
		prev := int32(0)
		for _, x := range f.Products {
			b = binary.AppendUvarint(b, uint64(x-prev))
			prev = x
		}
	}
	b = appendSketch(b, &p.Viewers)
	b = appendSketch(b, &p.SessionKeys)
	return b, nil
}

var errDamaged = errors.New("damaged partial aggregate")

type partialReader struct {
	b   []byte
	err error
}

func (r *partialReader) fail() {
	if r.err == nil {
		r.err = errDamaged
	}
}

func (r *partialReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *partialReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length that cannot exceed what is left, each item taking at least min bytes.
func (r *partialReader) count(min int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *partialReader) int64() int64 {
	v := r.uvarint()
	if v > math.MaxInt64 {
		r.fail()
		return 0
	}
	return int64(v)
}

func (r *partialReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *partialReader) string() string { return string(r.bytes(r.count(1))) }

func (r *partialReader) uint64() uint64 {
	v := r.bytes(8)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(v)
}

func (r *partialReader) sketch(want uint8) Sketch {
	hdr := r.bytes(2)
	if hdr == nil || hdr[0] != want {
		r.fail()
		return Sketch{P: want}
	}
	s := Sketch{P: want}
	switch hdr[1] {
	case 1:
		s.Regs = append([]uint8(nil), r.bytes(1<<want)...)
		for _, x := range s.Regs {
			if x > 65-want {
				r.fail()
			}
		}
	case 0:
		n := r.count(8)
		if n > ExactLimit(want) {
			r.fail()
			return s
		}
		if n > 0 {
			s.Exact = make([]uint64, n)
			for i := range s.Exact {
				s.Exact[i] = r.uint64()
				if i > 0 && s.Exact[i] <= s.Exact[i-1] {
					r.fail()
				}
			}
		}
	default:
		r.fail()
	}
	return s
}

// decodePartial reads a stored partial. A partial of another version is ErrNotFound (recompute it);
// a damaged one is an error.
func decodePartial(b []byte) (*Partial, error) {
	if len(b) < 4 || string(b[:3]) != string(partialMagic) {
		return nil, fmt.Errorf("decode partial: %w", errDamaged)
	}
	if b[3] != partialVersion {
		return nil, fmt.Errorf("partial version %d (want %d): %w", b[3], partialVersion, ErrNotFound)
	}
	r := &partialReader{b: b[4:]}
	p := &Partial{Version: partialVersion}
	p.File = r.string()
	p.Partition = r.string()
	p.Window = time.Unix(r.varint(), 0).UTC()
	c := &p.Counts
	for _, v := range []*int64{&c.Events, &c.Clicks, &c.Views, &c.AddedToCart, &c.Purchased, &c.Skipped, &c.Poison} {
		*v = r.int64()
	}
	c.Announced = r.varint()
	if n := r.count(2); n > 0 {
		c.PoisonReasons = make(map[string]int64, n)
		for range n {
			k := r.string()
			c.PoisonReasons[k] = r.int64()
		}
	}
	p.Products = make([]ProductStats, r.count(9))
	for i := range p.Products {
		ps := &p.Products[i]
		ps.ID, ps.Category = r.string(), r.string()
		ps.Views, ps.AddedToCart, ps.Purchased = r.int64(), r.int64(), r.int64()
		ps.Viewers, ps.Sessions = r.sketch(ProductPrecision), r.sketch(ProductPrecision)
	}
	p.Sessions = make([]SessionFragment, r.count(9))
	for i := range p.Sessions {
		f := &p.Sessions[i]
		f.Key = r.uint64()
		f.Products = make([]int32, r.count(1))
		prev := uint64(0)
		for j := range f.Products {
			prev += r.uvarint()
			if prev >= uint64(len(p.Products)) || (j > 0 && uint64(f.Products[j-1]) >= prev) {
				r.fail()
			}
			f.Products[j] = int32(prev)
		}
		if r.err != nil {
			break
		}
	}
	p.Viewers, p.SessionKeys = r.sketch(TotalPrecision), r.sketch(TotalPrecision)
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode partial %s: %w", p.File, r.err)
	}
	return p, nil
}
