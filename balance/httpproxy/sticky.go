package httpproxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/balance"
)

// macLen is the length of a sticky cookie's MAC: 128 bits of
// HMAC-SHA256, enough that forging one for a chosen backend is hopeless.
const macLen = 16

// cookieEncoding encodes MACs in cookie values. Strict: a value is
// accepted only in the exact form the proxy issues it.
var cookieEncoding = base64.RawURLEncoding.Strict()

// tokenLen is the length of an encoded MAC.
var tokenLen = cookieEncoding.EncodedLen(macLen)

// A stickyTable maps sticky cookie values to the backends they name. It
// learns backends from the picks of the balancer. Readers take no lock:
// the maps are immutable snapshots replaced on every insertion, which only
// happens when a backend is seen for the first time.
type stickyTable struct {
	name string
	key  []byte
	ttl  time.Duration
	max  int
	// pinned: sticky requests go through the balancer's PickAddr, which
	// knows whether the backend is still in the set; otherwise a backend
	// counts as in the set while Pick has returned it within ttl.
	pinned bool
	base   time.Time // origin of the monotonic clock

	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[stickySnap]
}

type stickySnap struct {
	byAddr map[string]*stickyEntry
	byMAC  map[uint64]*stickyEntry // by the first 8 bytes of the MAC
}

// A stickyEntry is one backend cookies can name.
type stickyEntry struct {
	b      balance.Backend
	mac    [macLen]byte
	cookie [2]string // Set-Cookie values: [0] plain, [1] Secure
	// seen is when the balancer last picked the backend, in nanoseconds
	// since base.
	seen atomic.Int64
	// down is set when a connection to the backend failed, cleared when
	// the balancer picks it again and it answers.
	down atomic.Bool
}

func newStickyTable(name string, key []byte, ttl time.Duration, max int, pinned bool) *stickyTable {
	t := &stickyTable{name: name, key: key, ttl: ttl, max: max, pinned: pinned, base: time.Now()}
	t.snap.Store(&stickySnap{byAddr: map[string]*stickyEntry{}, byMAC: map[uint64]*stickyEntry{}})
	return t
}

func (t *stickyTable) now() int64 { return int64(time.Since(t.base)) + 1 }

// mac computes the MAC of a backend address.
func (t *stickyTable) mac(addr string) (m [macLen]byte) {
	h := hmac.New(sha256.New, t.key)
	h.Write([]byte(addr))
	copy(m[:], h.Sum(nil))
	return m
}

// Token returns the cookie value that names addr.
func (t *stickyTable) token(addr string) string {
	m := t.mac(addr)
	return cookieEncoding.EncodeToString(m[:])
}

func (e *stickyEntry) setCookie(secure bool) string {
	if secure {
		return e.cookie[1]
	}
	return e.cookie[0]
}

// learn records that the balancer picked b and it answered, and returns
// its entry.
func (t *stickyTable) learn(b balance.Backend) *stickyEntry {
	now := t.now()
	if e := t.snap.Load().byAddr[b.Addr]; e != nil {
		// Writes to a shared word on every request would contend; a
		// refresh every ttl/8 keeps the TTL within an eighth.
		if now-e.seen.Load() > int64(t.ttl/8) {
			e.seen.Store(now)
		}
		if e.down.Load() {
			e.down.Store(false)
		}
		return e
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.snap.Load()
	if e := old.byAddr[b.Addr]; e != nil {
		e.seen.Store(now)
		e.down.Store(false)
		return e
	}
	e := &stickyEntry{b: b, mac: t.mac(b.Addr)}
	value := cookieEncoding.EncodeToString(e.mac[:])
	for i, secure := range []bool{false, true} {
		e.cookie[i] = (&http.Cookie{
			Name:     t.name,
			Value:    value,
			Path:     "/",
			HttpOnly: true,
			Secure:   secure,
			SameSite: http.SameSiteLaxMode,
		}).String()
	}
	e.seen.Store(now)

	next := &stickySnap{byAddr: make(map[string]*stickyEntry, len(old.byAddr)+1), byMAC: make(map[uint64]*stickyEntry, len(old.byMAC)+1)}
	maps.Copy(next.byAddr, old.byAddr)
	maps.Copy(next.byMAC, old.byMAC)
	// Forget what expired, then the least recently picked beyond max.
	if !t.pinned {
		for addr, x := range next.byAddr {
			if now-x.seen.Load() > int64(t.ttl) {
				next.remove(addr, x)
			}
		}
	}
	for len(next.byAddr) >= t.max {
		var oldest *stickyEntry
		for _, x := range next.byAddr {
			if oldest == nil || x.seen.Load() < oldest.seen.Load() {
				oldest = x
			}
		}
		next.remove(oldest.b.Addr, oldest)
	}
	// Two addresses whose MACs share 64 bits (never, in practice): the
	// newer wins, and the other's cookies re-pick.
	if x := next.byMAC[macIndex(e.mac)]; x != nil {
		next.remove(x.b.Addr, x)
	}
	next.byAddr[b.Addr] = e
	next.byMAC[macIndex(e.mac)] = e
	t.snap.Store(next)
	return e
}

func (s *stickySnap) remove(addr string, e *stickyEntry) {
	delete(s.byAddr, addr)
	if s.byMAC[macIndex(e.mac)] == e {
		delete(s.byMAC, macIndex(e.mac))
	}
}

func macIndex(m [macLen]byte) uint64 { return binary.LittleEndian.Uint64(m[:8]) }

// decode returns the entry a cookie value names, whether or not the
// backend is still usable; nil for anything but an exact, MAC-valid
// value of a known backend.
func (t *stickyTable) decode(value string) *stickyEntry {
	if len(value) != tokenLen {
		return nil
	}
	var m [macLen]byte
	if n, err := cookieEncoding.Decode(m[:], []byte(value)); err != nil || n != macLen {
		return nil
	}
	e := t.snap.Load().byMAC[macIndex(m)]
	if e == nil || !hmac.Equal(e.mac[:], m[:]) {
		return nil
	}
	return e
}

// lookup returns the backend a cookie value pins the request to, or nil
// when the request should pick through the balancer.
func (t *stickyTable) lookup(value string) *stickyEntry {
	e := t.decode(value)
	if e == nil || e.down.Load() {
		return nil
	}
	if !t.pinned && t.now()-e.seen.Load() > int64(t.ttl) {
		return nil
	}
	return e
}

// failed records that a connection to addr failed: its cookies re-pick
// until the balancer picks it again and it answers.
func (t *stickyTable) failed(addr string) {
	if e := t.snap.Load().byAddr[addr]; e != nil && !e.down.Load() {
		e.down.Store(true)
	}
}
