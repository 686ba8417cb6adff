package cache

import "encoding/json"

// A Codec turns the values of a Loader into the bytes a store holds and
// back. Unmarshal may keep data: the Loader hands it a slice no one else
// holds.
//
// The store is shared, so Unmarshal reads untrusted bytes: it must fail
// with an error, never panic, and allocate in proportion to its input.
// encoding/gob does not (a few bytes can declare a map of any size), which
// is why no gob codec is offered.
type Codec[T any] interface {
	Marshal(v T) ([]byte, error)
	Unmarshal(data []byte) (T, error)
}

// JSONCodec encodes with encoding/json: readable in redis-cli, and the
// default for every T other than []byte and string.
type JSONCodec[T any] struct{}

func (JSONCodec[T]) Marshal(v T) ([]byte, error) { return json.Marshal(v) }

func (JSONCodec[T]) Unmarshal(data []byte) (T, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

// BytesCodec stores a []byte as it is; the default when T is []byte.
type BytesCodec struct{}

func (BytesCodec) Marshal(v []byte) ([]byte, error) { return v, nil }

func (BytesCodec) Unmarshal(data []byte) ([]byte, error) { return data, nil }

// StringCodec stores a string as its bytes; the default when T is string.
type StringCodec struct{}

func (StringCodec) Marshal(v string) ([]byte, error)      { return []byte(v), nil }
func (StringCodec) Unmarshal(data []byte) (string, error) { return string(data), nil }

// defaultCodec is BytesCodec for []byte, StringCodec for string, else
// JSONCodec.
func defaultCodec[T any]() Codec[T] {
	var zero T
	switch any(zero).(type) {
	case []byte:
		return any(BytesCodec{}).(Codec[T])
	case string:
		return any(StringCodec{}).(Codec[T])
	}
	return JSONCodec[T]{}
}
