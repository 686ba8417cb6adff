package querycache

import (
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"time"
)

// Tags of the canonical argument encoding. Every value is a tag followed
// by a self-delimiting payload, so no two different argument lists encode
// to the same bytes.
const (
	tagNil      = 0x01 // untyped nil
	tagFalse    = 0x02
	tagTrue     = 0x03
	tagInt      = 0x04 // int, int8, int16, int32, int64: 8 bytes
	tagUint     = 0x05 // uint, uint8, uint16, uint32, uint64, uintptr: 8 bytes
	tagFloat64  = 0x06 // 8 bytes of IEEE 754 bits
	tagFloat32  = 0x07 // 4 bytes of IEEE 754 bits
	tagString   = 0x08 // length, bytes
	tagBytes    = 0x09 // []byte: length, bytes
	tagNilBytes = 0x0a // nil []byte
	tagTime     = 0x0b // unix seconds, nanoseconds, zone offset, zone name
	tagNamed    = 0x0c // type name, then the value as its underlying kind
	tagValuer   = 0x0d // type name, then the encoding of Value()
	tagPtr      = 0x0e // then the pointee
	tagNilPtr   = 0x0f // type name
	tagList     = 0x10 // slice or array: type name, length, elements
	tagNilList  = 0x11 // type name
	tagNamedArg = 0x12 // sql.NamedArg: name, then the value

	tagQuery    = 0xe0
	tagQueryRow = 0xe1
	tagTables   = 0xf0

	maxDepth = 16
)

var (
	valuerType = reflect.TypeFor[driver.Valuer]()
	timeType   = reflect.TypeFor[time.Time]()
)

// keyBuilder accumulates the canonical encoding of a query and hashes it.
type keyBuilder struct {
	b []byte
}

func (k *keyBuilder) byte(c byte)   { k.b = append(k.b, c) }
func (k *keyBuilder) u64(v uint64)  { k.b = binary.BigEndian.AppendUint64(k.b, v) }
func (k *keyBuilder) uvarint(n int) { k.b = binary.AppendUvarint(k.b, uint64(n)) }
func (k *keyBuilder) str(s string)  { k.uvarint(len(s)); k.b = append(k.b, s...) }

// typeName names t for the key: package path and name for a defined
// type, its literal otherwise.
func typeName(t reflect.Type) string {
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

// arg appends the canonical encoding of argument i.
func (k *keyBuilder) arg(i int, a any) error {
	// Fast paths: the types database/sql passes as they are.
	switch v := a.(type) {
	case nil:
		k.byte(tagNil)
		return nil
	case string:
		k.byte(tagString)
		k.str(v)
		return nil
	case int64:
		k.byte(tagInt)
		k.u64(uint64(v))
		return nil
	case int:
		k.byte(tagInt)
		k.u64(uint64(int64(v)))
		return nil
	case int32:
		k.byte(tagInt)
		k.u64(uint64(int64(v)))
		return nil
	case bool:
		if v {
			k.byte(tagTrue)
		} else {
			k.byte(tagFalse)
		}
		return nil
	case float64:
		k.byte(tagFloat64)
		k.u64(math.Float64bits(v))
		return nil
	case []byte:
		if v == nil {
			k.byte(tagNilBytes)
			return nil
		}
		k.byte(tagBytes)
		k.uvarint(len(v))
		k.b = append(k.b, v...)
		return nil
	case time.Time:
		k.time(v)
		return nil
	case sql.NamedArg:
		k.byte(tagNamedArg)
		k.str(v.Name)
		return k.arg(i, v.Value)
	}
	return k.value(i, reflect.ValueOf(a), 0)
}

func (k *keyBuilder) time(t time.Time) {
	name, off := t.Zone()
	k.byte(tagTime)
	k.u64(uint64(t.Unix()))
	k.u64(uint64(t.Nanosecond()))
	k.u64(uint64(int64(off)))
	k.str(name)
}

// value encodes any other argument by reflection. Defined types carry
// their name, so that a value is never taken for one of another type the
// driver might encode differently (time.Duration and int64, say).
func (k *keyBuilder) value(i int, v reflect.Value, depth int) error {
	t := v.Type()
	fail := func(reason string, err error) error {
		return &ArgError{Index: i, Type: t.String(), Reason: reason, Err: err}
	}
	if depth > maxDepth {
		return fail("nested too deeply", nil)
	}
	if t.Implements(valuerType) {
		if t.Kind() == reflect.Pointer && v.IsNil() {
			// database/sql sends a nil pointer as NULL without calling Value.
			k.byte(tagNilPtr)
			k.str(typeName(t))
			return nil
		}
		dv, err := v.Interface().(driver.Valuer).Value()
		if err != nil {
			return fail("its Value method failed", err)
		}
		k.byte(tagValuer)
		k.str(typeName(t))
		switch dv.(type) {
		case nil, int64, float64, bool, []byte, string, time.Time:
			return k.arg(i, dv)
		}
		return fail(fmt.Sprintf("its Value method returned a %T, not a driver.Value", dv), nil)
	}
	if t == timeType {
		k.time(v.Interface().(time.Time))
		return nil
	}
	named := t.Name() != ""
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		if named && t.PkgPath() != "" {
			k.byte(tagNamed)
			k.str(typeName(t))
		}
		k.scalar(v)
		return nil
	case reflect.Pointer:
		if v.IsNil() {
			k.byte(tagNilPtr)
			k.str(typeName(t))
			return nil
		}
		k.byte(tagPtr)
		return k.value(i, v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && v.IsNil() {
			k.byte(tagNilList)
			k.str(typeName(t))
			return nil
		}
		k.byte(tagList)
		k.str(typeName(t))
		k.uvarint(v.Len())
		if t.Elem().Kind() == reflect.Uint8 && t.Elem().PkgPath() == "" {
			if t.Kind() == reflect.Slice {
				k.b = append(k.b, v.Bytes()...)
			} else {
				for j := range v.Len() {
					k.b = append(k.b, byte(v.Index(j).Uint()))
				}
			}
			return nil
		}
		for j := range v.Len() {
			if err := k.value(i, v.Index(j), depth+1); err != nil {
				return err
			}
		}
		return nil
	case reflect.Interface:
		if v.IsNil() {
			k.byte(tagNil)
			return nil
		}
		return k.value(i, v.Elem(), depth+1)
	}
	return fail(fmt.Sprintf("a %s has no canonical encoding (implement driver.Valuer)", t.Kind()), nil)
}

// scalar encodes a value of a basic kind.
func (k *keyBuilder) scalar(v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			k.byte(tagTrue)
		} else {
			k.byte(tagFalse)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		k.byte(tagInt)
		k.u64(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		k.byte(tagUint)
		k.u64(v.Uint())
	case reflect.Float32:
		k.byte(tagFloat32)
		k.b = binary.BigEndian.AppendUint32(k.b, math.Float32bits(float32(v.Float())))
	case reflect.Float64:
		k.byte(tagFloat64)
		k.u64(math.Float64bits(v.Float()))
	case reflect.String:
		k.byte(tagString)
		k.str(v.String())
	}
}

// hashKey returns prefix + hex(SHA-256) of the canonical encoding of one
// query: the header (namespace, result type, mode), the query text, its
// arguments and the versions of its tables, which are sorted and unique.
func hashKey(prefix, header string, mode byte, query string, args []any, tables []string, versions []Version) (string, error) {
	var stack [512]byte
	k := keyBuilder{b: stack[:0]}
	k.str(header)
	k.byte(mode)
	k.str(query)
	k.uvarint(len(args))
	for i, a := range args {
		if err := k.arg(i, a); err != nil {
			return "", err
		}
	}
	k.byte(tagTables)
	k.uvarint(len(tables))
	for i, t := range tables {
		k.str(t)
		k.b = append(k.b, versions[i][:]...)
	}
	sum := sha256.Sum256(k.b)
	out := make([]byte, len(prefix)+hex.EncodedLen(len(sum)))
	copy(out, prefix)
	hex.Encode(out[len(prefix):], sum[:])
	return string(out), nil
}
