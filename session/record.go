package session

import (
	"encoding/binary"
	"errors"
	"time"
)

// A record is what the Manager keeps under one ID in the store: a live
// session, or, after the session got a new ID, a renewal record that names
// the new ID.
//
// A renewal record lets three kinds of request find their way:
//
//   - a Destroy by a request that loaded the old ID before the renewal
//     follows it to the new ID and deletes that too, so a logout racing a
//     renewal is never undone (the record lives until the session's
//     absolute deadline, longer than any request of that session);
//   - after Rotate, a request presenting the old ID within RotateGrace is
//     forwarded to the new session and sent the new ID (it held the
//     session at the same privilege);
//   - after Login or RenewID (a change of privilege) it is never
//     forwarded: within RotateGrace its plain writes are dropped and its
//     cookie left alone (it may be the same browser's request that was in
//     flight while the login committed), later it is an unknown ID.
//
// Layout (integers big-endian unless uvarint):
//
//	session: 'S' | created ns (8) | deadline ns (8) | expiry ns (8) | seen ns (8)
//	         | uvarint idle ns | flags (1) | uvarint seq | n (1) | n × commit ID (8)
//	         | uvarint len(user) | user | uvarint len(device) | device | codec bytes
//	renewed: 'R' | renewed at ns (8) | flags (1) | new ID
//
// Records of the earlier layout ('s' sessions, 'f' forwards) are still
// read.
type record struct {
	renewed bool // a renewal record; only next, at and forward are set

	// Renewal records.
	next    string    // the session's new ID
	at      time.Time // when it was renewed
	forward bool      // Rotate: forward the old ID during RotateGrace

	// Sessions.
	created  time.Time     // start of the session
	deadline time.Time     // absolute end; never extended by activity
	expiry   time.Time     // the idle expiry it was saved with
	seen     time.Time     // last write or touch
	idle     time.Duration // this session's idle timeout; 0: the Manager's
	persist  bool          // send the cookie with Expires
	seq      uint64        // commits applied since the session was created
	log      []uint64      // IDs of the last len(log) commits, oldest first
	user     string        // set by Login
	device   string        // the User-Agent of the Login request
	values   []byte        // codec bytes
}

// commitLogLen is how many recent commits a session keeps, so that a
// commit whose reply was lost can tell whether it was applied: as many as
// can land while a store client re-sends one write (go-redis retries after
// a broken connection, reconnecting through a network that may hold it for
// a second; the chaos session model saw 10 commits land meanwhile, which
// a log of 8 could not cover). 8 bytes each.
const commitLogLen = 64

const (
	kindSession   = 'S'
	kindRenewed   = 'R'
	kindSessionV1 = 's'
	kindForwardV1 = 'f'

	flagPersist = 1 << 0
	flagForward = 1 << 0
)

var errCorrupt = errors.New("session: corrupt record")

func (r *record) marshal() []byte {
	if r.renewed {
		b := make([]byte, 0, 10+len(r.next))
		b = append(b, kindRenewed)
		b = binary.BigEndian.AppendUint64(b, uint64(r.at.UnixNano()))
		var flags byte
		if r.forward {
			flags |= flagForward
		}
		b = append(b, flags)
		return append(b, r.next...)
	}
	n := 1 + 32 + 3*binary.MaxVarintLen64 + 2 + 8*len(r.log) + len(r.user) + len(r.device) + len(r.values)
	b := make([]byte, 0, n)
	b = append(b, kindSession)
	for _, t := range []time.Time{r.created, r.deadline, r.expiry, r.seen} {
		b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	}
	b = binary.AppendUvarint(b, uint64(r.idle))
	var flags byte
	if r.persist {
		flags |= flagPersist
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, r.seq)
	b = append(b, byte(len(r.log)))
	for _, cid := range r.log {
		b = binary.BigEndian.AppendUint64(b, cid)
	}
	b = binary.AppendUvarint(b, uint64(len(r.user)))
	b = append(b, r.user...)
	b = binary.AppendUvarint(b, uint64(len(r.device)))
	b = append(b, r.device...)
	return append(b, r.values...)
}

// unmarshalRecord parses b; lifetime is the deadline of a session saved in
// the earlier layout, which did not record one. It allocates only the
// user, device and commit log strings; values alias b.
func unmarshalRecord(b []byte, lifetime time.Duration) (record, error) {
	if len(b) == 0 {
		return record{}, errCorrupt
	}
	p := recordParser{b: b[1:]}
	switch b[0] {
	case kindRenewed:
		r := record{renewed: true, at: p.time()}
		r.forward = p.byte()&flagForward != 0
		r.next = string(p.b)
		if p.bad || !validID(r.next) {
			return record{}, errCorrupt
		}
		return r, nil
	case kindForwardV1:
		if !validID(string(p.b)) {
			return record{}, errCorrupt
		}
		// It lived RenewGrace, so it is within its grace while it exists.
		return record{renewed: true, forward: true, at: farFuture, next: string(p.b)}, nil
	case kindSession:
		r := record{created: p.time(), deadline: p.time(), expiry: p.time(), seen: p.time()}
		r.idle = time.Duration(p.uvarint())
		r.persist = p.byte()&flagPersist != 0
		r.seq = p.uvarint()
		n := int(p.byte())
		if n > commitLogLen || len(p.b) < 8*n {
			return record{}, errCorrupt
		}
		if n > 0 {
			r.log = make([]uint64, n)
			for i := range r.log {
				r.log[i] = p.uint64()
			}
		}
		r.user = p.string()
		r.device = p.string()
		if p.bad || r.idle < 0 {
			return record{}, errCorrupt
		}
		r.values = p.b
		return r, nil
	case kindSessionV1:
		r := record{created: p.time(), expiry: p.time()}
		r.seen = r.created
		r.deadline = r.created.Add(lifetime)
		r.user = p.string()
		if p.bad {
			return record{}, errCorrupt
		}
		r.values = p.b
		return r, nil
	}
	return record{}, errCorrupt
}

// farFuture stands for "always within the grace" for records of the
// earlier layout.
var farFuture = time.Unix(1<<62, 0)

// recordParser consumes b; a read past the end sets bad and yields zero.
type recordParser struct {
	b   []byte
	bad bool
}

func (p *recordParser) byte() byte {
	if len(p.b) < 1 {
		p.bad = true
		return 0
	}
	c := p.b[0]
	p.b = p.b[1:]
	return c
}

func (p *recordParser) time() time.Time {
	if len(p.b) < 8 {
		p.bad = true
		return time.Time{}
	}
	t := time.Unix(0, int64(binary.BigEndian.Uint64(p.b)))
	p.b = p.b[8:]
	return t
}

func (p *recordParser) uint64() uint64 {
	if len(p.b) < 8 {
		p.bad = true
		return 0
	}
	v := binary.BigEndian.Uint64(p.b)
	p.b = p.b[8:]
	return v
}

func (p *recordParser) uvarint() uint64 {
	v, k := binary.Uvarint(p.b)
	if k <= 0 {
		p.bad = true
		return 0
	}
	p.b = p.b[k:]
	return v
}

func (p *recordParser) string() string {
	n := p.uvarint()
	if p.bad || n > uint64(len(p.b)) {
		p.bad = true
		return ""
	}
	s := string(p.b[:n])
	p.b = p.b[n:]
	return s
}

// applied reports whether r includes the commit with ID cid, attempted
// as commit number seq: yes, no, or unknown when so many commits followed
// that its place has left the log.
func (r *record) applied(seq, cid uint64) (yes, known bool) {
	if r.seq < seq {
		return false, true
	}
	back := r.seq - seq // 0: the last commit
	if back >= uint64(len(r.log)) {
		return false, false
	}
	return r.log[len(r.log)-1-int(back)] == cid, true
}

// withCommit returns r's commit number and log with the commit cid
// appended.
func (r *record) withCommit(cid uint64) (uint64, []uint64) {
	log := make([]uint64, 0, commitLogLen)
	if len(r.log) >= commitLogLen {
		log = append(log, r.log[len(r.log)-commitLogLen+1:]...)
	} else {
		log = append(log, r.log...)
	}
	return r.seq + 1, append(log, cid)
}
