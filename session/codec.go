package session

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"time"
)

// A Codec turns a session's values into bytes for the store and back.
//
// The default, GobCodec, handles values of the predeclared types (int,
// string, bool, float64, []byte, ...) out of the box; a value of any
// other concrete type stored under an any must be registered once with
// gob.Register before it is Put, or the commit fails. A Codec must be safe
// for concurrent use.
type Codec interface {
	Encode(values map[string]any) ([]byte, error)
	Decode(data []byte) (map[string]any, error)
}

// GobCodec encodes values with encoding/gob. It is the default Codec.
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
