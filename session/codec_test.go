package session

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// codecTestCart is an application struct, never registered anywhere: it
// is stored as JSON.
type codecTestCart struct {
	Items []string
	Total int64
}

// codecTestCents is a named integer type: it is stored as JSON and comes
// back as codecTestCents, not int64.
type codecTestCents int64

// codecTestValues has one entry per fast-path type (with edge values) and
// a few values stored as JSON.
func codecTestValues() map[string]any {
	return map[string]any{
		"nil":        nil,
		"string":     "héllo",
		"empty":      "",
		"false":      false,
		"true":       true,
		"int":        42,
		"int-neg":    -7,
		"int-max":    math.MaxInt,
		"int-min":    math.MinInt,
		"int8":       int8(math.MinInt8),
		"int16":      int16(math.MaxInt16),
		"int32":      int32(math.MinInt32),
		"int64":      int64(math.MaxInt64),
		"uint":       uint(math.MaxUint),
		"uint8":      uint8(255),
		"uint16":     uint16(math.MaxUint16),
		"uint32":     uint32(math.MaxUint32),
		"uint64":     uint64(math.MaxUint64),
		"float32":    float32(3.5),
		"float64":    -2.25,
		"float64inf": math.Inf(1),
		"bytes":      []byte{0, 1, 2, 0xff},
		"bytes-0":    []byte{},
		"bytes-nil":  []byte(nil),
		"time-utc":   time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC),
		"time-zone":  time.Date(2001, 2, 3, 4, 5, 6, 7, time.FixedZone("X", 5*3600+1800)),
		"time-zero":  time.Time{},
		"cart":       codecTestCart{Items: []string{"a", "b"}, Total: 12},
		"cents":      codecTestCents(199),
		"map":        map[string]int{"x": 1},
		"":           "empty key",
	}
}

// decodedAs returns what Get[T] would give for raw, with T the type of want.
func decodedAs(raw, want any) any {
	e, ok := raw.(Encoded)
	if !ok {
		return raw
	}
	if e.Type != typeName(reflect.TypeOf(want)) {
		return e
	}
	p := reflect.New(reflect.TypeOf(want))
	if err := json.Unmarshal(e.JSON, p.Interface()); err != nil {
		return e
	}
	return p.Elem().Interface()
}

func TestBinaryCodecRoundTrip(t *testing.T) {
	var c BinaryCodec
	for k, v := range codecTestValues() {
		t.Run(k, func(t *testing.T) {
			in := map[string]any{k: v}
			data, err := c.Encode(in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			out, err := c.Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			raw, ok := out[k]
			if !ok || len(out) != 1 {
				t.Fatalf("Decode = %#v, want only key %q", out, k)
			}
			if native(v) {
				if _, isEnc := raw.(Encoded); isEnc {
					t.Fatalf("%T came back as an Encoded; want it stored natively", v)
				}
			} else if _, isEnc := raw.(Encoded); !isEnc {
				t.Fatalf("%T came back as %T; want an Encoded", v, raw)
			}
			got := decodedAs(raw, v)
			if reflect.TypeOf(got) != reflect.TypeOf(v) {
				t.Fatalf("type %T, want %T", got, v)
			}
			if tv, ok := v.(time.Time); ok {
				gt := got.(time.Time)
				_, wantOff := tv.Zone()
				_, gotOff := gt.Zone()
				if !gt.Equal(tv) || gotOff != wantOff {
					t.Fatalf("got %v, want %v", gt, tv)
				}
				return
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("got %#v, want %#v", got, v)
			}
		})
	}
	// All together in one map.
	in := codecTestValues()
	data, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("decoded %d entries, want %d", len(out), len(in))
	}
	for k, v := range in {
		if got := decodedAs(out[k], v); reflect.TypeOf(got) != reflect.TypeOf(v) {
			t.Errorf("%q: type %T, want %T", k, got, v)
		}
	}
	// An Encoded is written back as it is.
	again, err := c.Encode(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) && len(again) != len(data) {
		t.Fatalf("re-encoding the decoded values changed their size: %d, want %d", len(again), len(data))
	}
}

// TestEncodedTypeChecked: a value stored as one type is not handed out as
// another type that JSON would happily fill.
func TestEncodedTypeChecked(t *testing.T) {
	type other struct {
		Items []string
		Total int64
	}
	e, err := encode(codecTestCart{Items: []string{"a"}, Total: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decodeAs[other](e); ok {
		t.Fatal("a codecTestCart decoded as another struct type")
	}
	if _, ok := decodeAs[map[string]any](e); ok {
		t.Fatal("a codecTestCart decoded as map[string]any")
	}
	got, ok := decodeAs[codecTestCart](e)
	if !ok || got.Total != 2 || len(got.Items) != 1 {
		t.Fatalf("decodeAs[codecTestCart] = %#v, %v", got, ok)
	}
}

func TestBinaryCodecNaN(t *testing.T) {
	var c BinaryCodec
	data, err := c.Encode(map[string]any{"f": math.NaN(), "g": float32(math.NaN())})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := out["f"].(float64); !ok || !math.IsNaN(f) {
		t.Errorf("f = %#v", out["f"])
	}
	if g, ok := out["g"].(float32); !ok || g == g {
		t.Errorf("g = %#v", out["g"])
	}
}

func TestBinaryCodecEmpty(t *testing.T) {
	var c BinaryCodec
	for _, in := range []map[string]any{nil, {}} {
		data, err := c.Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Decode(data)
		if err != nil || out == nil || len(out) != 0 {
			t.Fatalf("Decode(Encode(%#v)) = %#v, %v", in, out, err)
		}
	}
	out, err := c.Decode(nil)
	if err != nil || out == nil || len(out) != 0 {
		t.Fatalf("Decode(nil) = %#v, %v", out, err)
	}
}

// TestBinaryCodecNeedsNoRegistration: a type never registered anywhere
// is stored; one JSON cannot encode fails with the key's name.
func TestBinaryCodecNeedsNoRegistration(t *testing.T) {
	type unregistered struct{ A int }
	data, err := BinaryCodec{}.Encode(map[string]any{"u": unregistered{1}})
	if err != nil {
		t.Fatalf("Encode of an unregistered type: %v", err)
	}
	out, err := BinaryCodec{}.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := decodeAs[unregistered](out["u"].(Encoded)); !ok || got.A != 1 {
		t.Fatalf("decoded %#v, %v", got, ok)
	}
	_, err = BinaryCodec{}.Encode(map[string]any{"ch": make(chan int)})
	if err == nil || !strings.Contains(err.Error(), `"ch"`) {
		t.Fatalf("Encode of a channel: err = %v, want an error naming the key", err)
	}
	if err := (BinaryCodec{}).CheckValue(make(chan int)); err == nil {
		t.Fatal("CheckValue accepted a channel")
	}
	if err := (BinaryCodec{}).CheckValue(unregistered{}); err != nil {
		t.Fatalf("CheckValue refused a plain struct: %v", err)
	}
}

// gobMapBomb is a 25-byte gob stream of a map[string]int that declares
// 1<<22 entries; gob sizes the map from the count, so decoding it with
// encoding/gob allocates about 213 MiB.
func gobMapBomb(t testing.TB) []byte {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// Messages are a length byte and that many bytes; the last is the value:
	// type ID (2 bytes), singleton delta (1), count (1), the entries.
	last := 0
	for i := 0; i < len(b); i += 1 + int(b[i]) {
		last = i
	}
	value := b[last+1:]
	if len(value) < 4 || value[3] != 1 {
		t.Fatalf("unexpected gob layout % x", b)
	}
	payload := append(append(append([]byte{}, value[:3]...), 0xfd, 0x40, 0x00, 0x00), value[4:]...)
	return append(append(append([]byte{}, b[:last]...), byte(len(payload))), payload...)
}

// TestBinaryCodecRefusesGob: gob is never decoded from the store, so a few
// bytes that declare a huge map cost nothing. The gob map bomb of the
// session issue (2^22 entries in 120 bytes) allocated 213 MiB.
func TestBinaryCodecRefusesGob(t *testing.T) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(map[string]any{"n": 3}); err != nil {
		t.Fatal(err)
	}
	bomb := gobMapBomb(t)
	inTag := append([]byte{binaryFormat, 1, 1, 'k', tagGob, byte(len(bomb))}, bomb...)
	for name, data := range map[string][]byte{"gob stream": buf.Bytes(), "gob map bomb": bomb, "gob value tag": inTag} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := BinaryCodec{}.Decode(data)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("Decode = %v, want an error wrapping errCorrupt", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Fatalf("Decode of %d bytes allocated %d bytes", len(data), n)
			}
		})
	}
}

func TestBinaryCodecCorrupt(t *testing.T) {
	var c BinaryCodec
	valid, err := c.Encode(map[string]any{"k": "value", "n": 5, "t": time.Unix(1, 0), "c": codecTestCart{Total: 1}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"huge count":       {binaryFormat, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge key length":  {binaryFormat, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, tagNil},
		"huge string":      {binaryFormat, 1, 1, 'k', tagString, 0xff, 0xff, 0xff, 0x7f, 'x'},
		"unknown tag":      {binaryFormat, 1, 1, 'k', 0xee},
		"int8 overflow":    {binaryFormat, 1, 1, 'k', tagInt8, 0x80, 0x02}, // 128
		"uint8 overflow":   {binaryFormat, 1, 1, 'k', tagUint8, 0x80, 0x02},
		"truncated float":  {binaryFormat, 1, 1, 'k', tagFloat64, 1, 2, 3},
		"bad time":         {binaryFormat, 1, 1, 'k', tagTime, 2, 0xff, 0xff},
		"duplicate key":    {binaryFormat, 2, 1, 'k', tagNil, 1, 'k', tagTrue},
		"trailing":         {binaryFormat, 1, 1, 'k', tagNil, 0},
		"gob huge count":   {binaryFormat, 1, 1, 'k', tagGob, 4, 0xfc, 0x7f, 0xff, 0xff},
		"gob garbage":      {binaryFormat, 1, 1, 'k', tagGob, 3, 2, 0xff, 0x00},
		"legacy gob huge":  {0xf8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"legacy garbage":   {0x03, 0x01, 0x02, 0x03},
		"json huge length": {binaryFormat, 1, 1, 'k', tagJSON, 1, 'T', 0xff, 0xff, 0xff, 0x7f, '{'},
		"json huge type":   {binaryFormat, 1, 1, 'k', tagJSON, 0xff, 0xff, 0xff, 0x7f, 'T'},
		"json truncated":   {binaryFormat, 1, 1, 'k', tagJSON, 1, 'T'},
		"truncated valid":  valid[:len(valid)-1],
		"only format byte": {binaryFormat},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := c.Decode(data)
			if err == nil {
				t.Fatalf("Decode = %#v, want an error", out)
			}
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("err = %v, want one wrapping errCorrupt", err)
			}
		})
	}
}

func TestBinaryCodecDecodeAllocs(t *testing.T) {
	var c BinaryCodec
	data, err := c.Encode(map[string]any{"n": 1000, "user": "alice", "seen": time.Unix(1e9, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	// The map and its buckets, two keys... a handful; gob needed ~100.
	if n := testing.AllocsPerRun(100, func() { _, _ = c.Decode(data) }); n > 12 {
		t.Errorf("Decode: %v allocs, want ≤ 12", n)
	}
	in := map[string]any{"n": 1000, "user": "alice"}
	if n := testing.AllocsPerRun(100, func() { _, _ = c.Encode(in) }); n > 1 {
		t.Errorf("Encode: %v allocs, want 1", n)
	}
}

func FuzzBinaryCodec(f *testing.F) {
	var c BinaryCodec
	seeds := []map[string]any{
		{},
		{"n": 1},
		{"s": "x", "b": true, "f": 1.5, "i8": int8(-3), "u": uint64(1 << 40)},
		{"bytes": []byte("abc"), "t": time.Unix(1e9, 5).UTC(), "nil": nil},
		{"cart": codecTestCart{Items: []string{"a"}, Total: 3}, "cents": codecTestCents(-4)},
	}
	for _, s := range seeds {
		data, err := c.Encode(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(gobMapBomb(f))
	f.Add([]byte{binaryFormat, 1, 1, 'k', tagGob, 4, 0xfc, 0x7f, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		values, err := c.Decode(data) // must not panic
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v does not wrap errCorrupt", err)
			}
			return
		}
		// Whatever decoded must round-trip to the same values.
		enc, err := c.Encode(values)
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", values, err)
		}
		again, err := c.Decode(enc)
		if err != nil {
			t.Fatalf("decoding re-encoded %#v: %v", values, err)
		}
		if !codecEqual(values, again) {
			t.Fatalf("round trip: %#v != %#v", again, values)
		}
	})
}

// codecEqual is reflect.DeepEqual except that floats compare by bits (NaN)
// and times by instant and offset.
func codecEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || reflect.TypeOf(av) != reflect.TypeOf(bv) {
			return false
		}
		switch av := av.(type) {
		case float64:
			if math.Float64bits(av) != math.Float64bits(bv.(float64)) {
				return false
			}
		case float32:
			if math.Float32bits(av) != math.Float32bits(bv.(float32)) {
				return false
			}
		case time.Time:
			bt := bv.(time.Time)
			_, ao := av.Zone()
			_, bo := bt.Zone()
			if !av.Equal(bt) || ao != bo {
				return false
			}
		case []byte:
			if !bytes.Equal(av, bv.([]byte)) || (av == nil) != (bv.([]byte) == nil) {
				return false
			}
		case Encoded:
			if be := bv.(Encoded); av.Type != be.Type || !bytes.Equal(av.JSON, be.JSON) {
				return false
			}
		default:
			if !reflect.DeepEqual(av, bv) {
				return false
			}
		}
	}
	return true
}

var codecBenchValues = map[string]any{
	"n":    12345,
	"user": "alice@example.com",
	"seen": time.Unix(1.7e9, 0).UTC(),
	"csrf": []byte("0123456789abcdef0123456789abcdef"),
}

func BenchmarkCodec(b *testing.B) {
	var c BinaryCodec
	data, err := c.Encode(codecBenchValues)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Encode(codecBenchValues); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
