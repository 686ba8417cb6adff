package session

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// A Codec turns a session's values into bytes for the store and back.
//
// The default, BinaryCodec, stores values of the predeclared scalar types,
// []byte and time.Time directly and any other value with encoding/gob, so
// a value of any other concrete type stored under an any must be
// registered once with gob.Register before it is Put, or the commit fails.
// A Codec must be safe for concurrent use.
type Codec interface {
	Encode(values map[string]any) ([]byte, error)
	Decode(data []byte) (map[string]any, error)
}

// GobCodec encodes the whole map with encoding/gob. It was the default
// Codec before BinaryCodec, which still decodes what GobCodec encoded.
type GobCodec struct{}

// Encode implements Codec.
func (GobCodec) Encode(values map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(values); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode implements Codec.
func (GobCodec) Decode(data []byte) (map[string]any, error) {
	values := map[string]any{}
	if len(data) == 0 {
		return values, nil
	}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&values); err != nil {
		return nil, err
	}
	if values == nil {
		values = map[string]any{}
	}
	return values, nil
}

// BinaryCodec is the default Codec. It writes a compact binary encoding
// of the map that needs no reflection and few allocations for values of
// type string, bool, int, int8, int16, int32, int64, uint, uint8, uint16,
// uint32, uint64, float32, float64, []byte and time.Time, and for nil. A
// value of any other type (a named type such as type Cents int64
// included) is encoded on its own with encoding/gob, so it must be
// registered with gob.Register. Decode returns every value with the Go
// type it was stored with: an int stays an int, a Cart a Cart. time.Time
// keeps its instant and zone offset but loses its monotonic reading, as
// with gob.
//
// Decode also reads what GobCodec encoded (sessions stored before the
// default changed), and rejects malformed input with an error wrapping
// the package's corrupt-record error; it never panics and allocates in
// proportion to the input.
//
// Layout: a format byte, uvarint entry count, then per entry uvarint
// len(key) | key | tag byte | payload; integers are (zig-zag) varints,
// floats their IEEE bits big-endian, strings and []byte length-prefixed,
// time.Time its MarshalBinary form and gob values a length-prefixed gob
// stream of the value as an interface.
type BinaryCodec struct{}

// binaryFormat is BinaryCodec's leading byte. Bytes 0x80..0xF7 never start
// a gob stream (a gob message count is either < 0x80 or a negated byte
// count 0xF8..0xFF), so Decode can tell the two encodings apart.
const binaryFormat = 0xB1

// Value tags of BinaryCodec.
const (
	tagNil = iota
	tagString
	tagFalse
	tagTrue
	tagInt
	tagInt8
	tagInt16
	tagInt32
	tagInt64
	tagUint
	tagUint8
	tagUint16
	tagUint32
	tagUint64
	tagFloat32
	tagFloat64
	tagBytes
	tagBytesNil
	tagTime
	tagGob
)

// Encode implements Codec.
func (BinaryCodec) Encode(values map[string]any) ([]byte, error) {
	size := 1 + binary.MaxVarintLen64
	for k, v := range values {
		size += binary.MaxVarintLen64 + len(k) + 1 + binary.MaxVarintLen64
		switch v := v.(type) {
		case string:
			size += len(v)
		case []byte:
			size += len(v)
		case time.Time:
			size += 16
		}
	}
	b := make([]byte, 0, size)
	b = append(b, binaryFormat)
	b = binary.AppendUvarint(b, uint64(len(values)))
	for k, v := range values {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		var err error
		if b, err = appendValue(b, v); err != nil {
			return nil, fmt.Errorf("session: encoding value %q (%T): %w", k, v, err)
		}
	}
	return b, nil
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, tagNil), nil
	case string:
		b = append(b, tagString)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...), nil
	case bool:
		if v {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case int:
		return binary.AppendVarint(append(b, tagInt), int64(v)), nil
	case int8:
		return binary.AppendVarint(append(b, tagInt8), int64(v)), nil
	case int16:
		return binary.AppendVarint(append(b, tagInt16), int64(v)), nil
	case int32:
		return binary.AppendVarint(append(b, tagInt32), int64(v)), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt64), v), nil
	case uint:
		return binary.AppendUvarint(append(b, tagUint), uint64(v)), nil
	case uint8:
		return binary.AppendUvarint(append(b, tagUint8), uint64(v)), nil
	case uint16:
		return binary.AppendUvarint(append(b, tagUint16), uint64(v)), nil
	case uint32:
		return binary.AppendUvarint(append(b, tagUint32), uint64(v)), nil
	case uint64:
		return binary.AppendUvarint(append(b, tagUint64), v), nil
	case float32:
		return binary.BigEndian.AppendUint32(append(b, tagFloat32), math.Float32bits(v)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(b, tagFloat64), math.Float64bits(v)), nil
	case []byte:
		if v == nil {
			return append(b, tagBytesNil), nil
		}
		b = append(b, tagBytes)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...), nil
	case time.Time:
		b = append(b, tagTime)
		n := len(b)
		b = append(b, 0) // length, at most 16 (time's binary form is ≤ 16 bytes)
		b, err := v.AppendBinary(b)
		if err != nil {
			return nil, err
		}
		if len(b)-n-1 >= 0x80 {
			return nil, errors.New("time encoding too long")
		}
		b[n] = byte(len(b) - n - 1)
		return b, nil
	}
	return appendGob(b, v)
}

// appendGob appends v as a gob value: kept out of appendValue so that only
// this path moves v to the heap.
func appendGob(b []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&v); err != nil {
		return nil, err
	}
	b = append(b, tagGob)
	b = binary.AppendUvarint(b, uint64(buf.Len()))
	return append(b, buf.Bytes()...), nil
}

// Decode implements Codec.
func (BinaryCodec) Decode(data []byte) (map[string]any, error) {
	if len(data) == 0 {
		return map[string]any{}, nil
	}
	if data[0] != binaryFormat {
		// Encoded by GobCodec, the earlier default.
		if err := checkGobFraming(data); err != nil {
			return nil, err
		}
		values, err := GobCodec{}.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%w: gob values: %w", errCorrupt, err)
		}
		return values, nil
	}
	// Keys and string values are substrings of one copy of the input: one
	// allocation instead of one per string.
	d := decoder{b: data[1:], s: string(data[1:])}
	n := d.uvarint()
	// Every entry takes at least 2 bytes (key length and tag).
	if d.err != nil || n > uint64(len(d.b))/2 {
		return nil, corruptValues("bad entry count")
	}
	values := make(map[string]any, int(n))
	for range n {
		key := d.string()
		if d.err != nil {
			return nil, d.err
		}
		v := d.value()
		if d.err != nil {
			return nil, d.err
		}
		if _, dup := values[key]; dup {
			return nil, corruptValues("duplicate key")
		}
		values[key] = v
	}
	if len(d.b) != 0 {
		return nil, corruptValues("trailing bytes")
	}
	return values, nil
}

func corruptValues(what string) error {
	return fmt.Errorf("%w: values: %s", errCorrupt, what)
}

// A decoder consumes b; the first failure is kept in err and makes every
// later read return zero values.
type decoder struct {
	b   []byte
	s   string // the whole input as a string; b is a suffix of it
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = corruptValues(what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) varint() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) fixed(n int) []byte {
	if len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// bytes reads a uvarint length and that many bytes, which alias the input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length exceeds input")
		return nil
	}
	return d.fixed(int(n))
}

// string reads a uvarint length and that many bytes as a substring of d.s.
func (d *decoder) string() string {
	p := d.bytes()
	if d.err != nil {
		return ""
	}
	end := len(d.s) - len(d.b)
	return d.s[end-len(p) : end]
}

// signed reads a varint that must fit in bits bits.
func (d *decoder) signed(bits uint) int64 {
	v := d.varint()
	if bits < 64 && (v < -1<<(bits-1) || v >= 1<<(bits-1)) {
		d.fail("integer out of range")
	}
	return v
}

// unsigned reads a uvarint that must fit in bits bits.
func (d *decoder) unsigned(bits uint) uint64 {
	v := d.uvarint()
	if bits < 64 && v >= 1<<bits {
		d.fail("integer out of range")
	}
	return v
}

func (d *decoder) value() any {
	switch tag := d.byte(); tag {
	case tagNil:
		return nil
	case tagString:
		return d.string()
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagInt:
		return int(d.signed(strconv.IntSize))
	case tagInt8:
		return int8(d.signed(8))
	case tagInt16:
		return int16(d.signed(16))
	case tagInt32:
		return int32(d.signed(32))
	case tagInt64:
		return d.signed(64)
	case tagUint:
		return uint(d.unsigned(strconv.IntSize))
	case tagUint8:
		return uint8(d.unsigned(8))
	case tagUint16:
		return uint16(d.unsigned(16))
	case tagUint32:
		return uint32(d.unsigned(32))
	case tagUint64:
		return d.unsigned(64)
	case tagFloat32:
		p := d.fixed(4)
		if p == nil {
			return nil
		}
		return math.Float32frombits(binary.BigEndian.Uint32(p))
	case tagFloat64:
		p := d.fixed(8)
		if p == nil {
			return nil
		}
		return math.Float64frombits(binary.BigEndian.Uint64(p))
	case tagBytes:
		p := d.bytes()
		if d.err != nil {
			return nil
		}
		return append([]byte{}, p...)
	case tagBytesNil:
		return []byte(nil)
	case tagTime:
		p := d.bytes()
		if d.err != nil {
			return nil
		}
		var t time.Time
		if err := t.UnmarshalBinary(p); err != nil {
			d.fail("bad time")
			return nil
		}
		return t
	case tagGob:
		p := d.bytes()
		if d.err != nil {
			return nil
		}
		if err := checkGobFraming(p); err != nil {
			d.err = err
			return nil
		}
		var v any
		if err := gob.NewDecoder(bytes.NewReader(p)).Decode(&v); err != nil {
			d.err = fmt.Errorf("%w: values: gob value: %w", errCorrupt, err)
			return nil
		}
		return v
	default:
		if d.err == nil {
			d.fail("unknown value tag " + strconv.Itoa(int(tag)))
		}
		return nil
	}
}

// checkGobFraming checks that b is a sequence of whole gob messages (a
// gob-encoded count followed by that many bytes), so that the gob decoder
// never sizes a buffer from a count the input cannot back.
func checkGobFraming(b []byte) error {
	for len(b) > 0 {
		c := b[0]
		b = b[1:]
		n := uint64(c)
		if c >= 0x80 {
			k := 256 - int(c) // 0xFF means 1 byte, 0xF8 8
			if k > 8 || k > len(b) {
				return corruptValues("bad gob message count")
			}
			n = 0
			for _, x := range b[:k] {
				n = n<<8 | uint64(x)
			}
			b = b[k:]
		}
		if n == 0 || n > uint64(len(b)) {
			return corruptValues("bad gob message count")
		}
		b = b[n:]
	}
	return nil
}

// A record is what the Manager keeps under one ID in the store: either a
// session or, for RenewGrace after RenewID, a forwarding record that names
// the session's new ID.
//
// Layout (all integers big-endian):
//
//	session: 's' | created unix ns (8) | expiry unix ns (8) | uvarint len(user) | user | codec bytes
//	forward: 'f' | new ID
type record struct {
	forward string    // new ID, for a forwarding record
	created time.Time // start of the absolute lifetime
	expiry  time.Time // expiry the record was saved with
	user    string    // user recorded by Login
	values  []byte    // codec bytes
}

const (
	kindSession = 's'
	kindForward = 'f'
)

var errCorrupt = errors.New("session: corrupt record")

func (r *record) marshal() []byte {
	if r.forward != "" {
		return append([]byte{kindForward}, r.forward...)
	}
	b := make([]byte, 0, 1+16+binary.MaxVarintLen64+len(r.user)+len(r.values))
	b = append(b, kindSession)
	b = binary.BigEndian.AppendUint64(b, uint64(r.created.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(r.expiry.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(r.user)))
	b = append(b, r.user...)
	return append(b, r.values...)
}

func unmarshalRecord(b []byte) (record, error) {
	if len(b) == 0 {
		return record{}, errCorrupt
	}
	switch b[0] {
	case kindForward:
		if !validID(string(b[1:])) {
			return record{}, errCorrupt
		}
		return record{forward: string(b[1:])}, nil
	case kindSession:
		b = b[1:]
		if len(b) < 16 {
			return record{}, errCorrupt
		}
		r := record{
			created: time.Unix(0, int64(binary.BigEndian.Uint64(b))),
			expiry:  time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))),
		}
		b = b[16:]
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return record{}, errCorrupt
		}
		r.user = string(b[k : k+int(n)])
		r.values = b[k+int(n):]
		return r, nil
	}
	return record{}, errCorrupt
}
