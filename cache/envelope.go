package cache

import (
	"encoding/binary"
	"math"
	"time"
)

// An envelope is what a Loader stores under a key: a fixed header that
// carries the freshness, recompute time and fill lease of the entry,
// followed by the codec's bytes. Keeping all of it in the one key makes
// every lease operation a single-key Add or CompareAndSwap, which Redis
// Cluster and Memcached both do atomically.
//
//	[0]      envelopeMagic
//	[1]      kind
//	[2:10]   fresh until, Unix nanoseconds (0: forever)
//	[10:14]  delta, the last load's duration in microseconds (XFetch)
//	[14:22]  lease token (0: no lease)
//	[22:30]  lease until, Unix nanoseconds
//	[30:]    payload
type envelope struct {
	kind       byte
	freshUntil int64
	delta      time.Duration
	token      uint64
	leaseUntil int64
	payload    []byte
}

const (
	envelopeMagic  = 0xC5
	envelopeHeader = 30

	kindValue    = 1 // payload is the codec's bytes
	kindNotFound = 2 // the source had nothing (negative caching)
	kindLease    = 3 // no value yet: a process is filling it
)

func (e envelope) marshal() []byte {
	b := make([]byte, envelopeHeader+len(e.payload))
	b[0], b[1] = envelopeMagic, e.kind
	binary.BigEndian.PutUint64(b[2:], uint64(e.freshUntil))
	binary.BigEndian.PutUint32(b[10:], uint32(min(e.delta/time.Microsecond, math.MaxUint32)))
	binary.BigEndian.PutUint64(b[14:], e.token)
	binary.BigEndian.PutUint64(b[22:], uint64(e.leaseUntil))
	copy(b[envelopeHeader:], e.payload)
	return b
}

// parseEnvelope reads b; ok is false for bytes a Loader did not write
// (another writer, or an older format), which the Loader treats as a miss
// and overwrites.
func parseEnvelope(b []byte) (e envelope, ok bool) {
	if len(b) < envelopeHeader || b[0] != envelopeMagic || b[1] < kindValue || b[1] > kindLease {
		return envelope{}, false
	}
	return envelope{
		kind:       b[1],
		freshUntil: int64(binary.BigEndian.Uint64(b[2:])),
		delta:      time.Duration(binary.BigEndian.Uint32(b[10:])) * time.Microsecond,
		token:      binary.BigEndian.Uint64(b[14:]),
		leaseUntil: int64(binary.BigEndian.Uint64(b[22:])),
		payload:    b[envelopeHeader:],
	}, true
}

// fresh reports whether the entry is still within its TTL at now.
func (e envelope) fresh(now int64) bool { return e.freshUntil == 0 || now < e.freshUntil }

// leased reports whether a filler holds a live lease on the entry at now.
func (e envelope) leased(now int64) bool { return e.token != 0 && now < e.leaseUntil }
