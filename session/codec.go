package session

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// A Codec turns a session's values into bytes for the store and back.
//
// The store is shared, so whatever it returns is untrusted input: Decode
// must fail with an error, never panic, and allocate in proportion to the
// input, whatever the bytes claim. A Codec must be safe for concurrent use.
type Codec interface {
	Encode(values map[string]any) ([]byte, error)
	Decode(data []byte) (map[string]any, error)
}

// A ValueChecker is a Codec that can tell whether it can encode a value.
// Put and Update ask it, so that a value the codec cannot store fails at
// the call that stored it rather than at the commit. Put asks a Codec
// without this method to Encode a map holding just the value.
type ValueChecker interface {
	CheckValue(v any) error
}

// BinaryCodec is the default Codec. It writes a compact binary encoding
// of the map, without reflection and with few allocations, for values of
// type string, bool, int, int8, int16, int32, int64, uint, uint8, uint16,
// uint32, uint64, float32, float64, []byte and time.Time, and for nil;
// Decode returns each of them with the Go type it was stored with (an int
// stays an int). time.Time keeps its instant and zone offset but loses its
// monotonic reading.
//
// A value of any other type (a struct, a map, a slice, a named type such
// as type Cents int64) needs no registration: it is stored as JSON with
// the name of its Go type, and Get[T] and Update[T] decode it into T when
// T is that type (and report false for any other T). Get[any] returns it
// as an Encoded. encoding/json's rules apply: only exported fields are
// kept, and an interface-typed field comes back as JSON's generic types.
// A value json.Marshal refuses (a channel, a func, a cycle) makes Put
// fail.
//
// Decode rejects malformed input with an error wrapping the package's
// corrupt-record error; it never panics and allocates in proportion to
// the input. It does not decode gob: a gob stream can declare a map of
// any size in a few bytes, and the store is shared.
//
// Layout: a format byte, uvarint entry count, then per entry uvarint
// len(key) | key | tag byte | payload; integers are (zig-zag) varints,
// floats their IEEE bits big-endian, strings and []byte length-prefixed,
// time.Time its MarshalBinary form, and other values a length-prefixed
// type name followed by length-prefixed JSON.
type BinaryCodec struct{}

// An Encoded is a value of a type BinaryCodec does not store natively, as
// it was stored: the name of its Go type and its JSON. Get[T] and
// Update[T] decode it into T when T has that name; Get[any] returns the
// Encoded itself. Putting an Encoded stores it as it is.
type Encoded struct {
	Type string
	JSON []byte
}

// typeName is the name an Encoded records for a value of type t: the
// package path and name of a named type, else t's literal form.
func typeName(t reflect.Type) string {
	if t == nil {
		return ""
	}
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

// encode returns v as an Encoded.
func encode(v any) (Encoded, error) {
	if e, ok := v.(Encoded); ok {
		return e, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return Encoded{}, err
	}
	return Encoded{Type: typeName(reflect.TypeOf(v)), JSON: data}, nil
}

// decodeAs returns the value e holds when T is its type.
func decodeAs[T any](e Encoded) (T, bool) {
	var t T
	if typeName(reflect.TypeFor[T]()) != e.Type {
		return t, false
	}
	if err := json.Unmarshal(e.JSON, &t); err != nil {
		return t, false
	}
	return t, true
}

// native reports whether BinaryCodec stores v without JSON.
func native(v any) bool {
	switch v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
		float32, float64, []byte, time.Time, Encoded:
		return true
	}
	return false
}

// CheckValue implements ValueChecker.
func (BinaryCodec) CheckValue(v any) error {
	if native(v) {
		return nil
	}
	_, err := json.Marshal(v)
	return err
}

// binaryFormat is BinaryCodec's leading byte.
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
	tagGob // written by earlier versions; refused by Decode
	tagJSON
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
		case Encoded:
			size += binary.MaxVarintLen64 + len(v.Type) + len(v.JSON)
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
	return appendJSON(b, v)
}

// appendJSON appends v as an Encoded: kept out of appendValue so that
// only this path moves v to the heap.
func appendJSON(b []byte, v any) ([]byte, error) {
	e, err := encode(v)
	if err != nil {
		return nil, err
	}
	b = append(b, tagJSON)
	b = binary.AppendUvarint(b, uint64(len(e.Type)))
	b = append(b, e.Type...)
	b = binary.AppendUvarint(b, uint64(len(e.JSON)))
	return append(b, e.JSON...), nil
}

// Decode implements Codec.
func (BinaryCodec) Decode(data []byte) (map[string]any, error) {
	if len(data) == 0 {
		return map[string]any{}, nil
	}
	if data[0] != binaryFormat {
		return nil, corruptValues("not BinaryCodec's format (gob-encoded sessions are not decoded)")
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
	case tagJSON:
		typ := d.string()
		p := d.bytes()
		if d.err != nil {
			return nil
		}
		return Encoded{Type: typ, JSON: append([]byte(nil), p...)}
	default:
		if d.err == nil {
			d.fail("unknown value tag " + strconv.Itoa(int(tag)))
		}
		return nil
	}
}
