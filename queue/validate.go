package queue

import (
	"crypto/rand"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"time"
	"unicode/utf8"
)

// maxName bounds queue names and caller-chosen job IDs.
const maxName = 100

// validName reports whether s is a queue name or caller-chosen ID: 1 to
// 100 bytes of letters, digits and ".-_:".
func validName(s string) bool {
	if s == "" || len(s) > maxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_', c == ':':
		default:
			return false
		}
	}
	return true
}

// Prepare validates j and fills its defaults, for JobQueue
// implementations: Queue, ID (a random one unless the caller chose it),
// MaxAttempts and Retention; empty Headers become nil (Prepare does not
// copy them: a queue keeps a copy of its own). maxPayload of 0 means DefaultMaxPayload. Bad
// input is an error wrapping ErrInvalidJob, ErrPayloadTooLarge or
// ErrHeadersTooLarge.
func Prepare(j Job, maxPayload int) (Job, JobID, error) {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	if j.Queue == "" {
		j.Queue = DefaultQueue
	}
	switch {
	case !validName(j.Queue):
		return j, "", fmt.Errorf("%w: queue name %q: want 1 to %d of [A-Za-z0-9.:_-]", ErrInvalidJob, j.Queue, maxName)
	case j.Type == "" || len(j.Type) > 200:
		return j, "", fmt.Errorf("%w: type must be 1 to 200 bytes", ErrInvalidJob)
	case j.ID != "" && !validName(j.ID):
		return j, "", fmt.Errorf("%w: job ID %q: want 1 to %d of [A-Za-z0-9.:_-]", ErrInvalidJob, j.ID, maxName)
	case len(j.Payload) > maxPayload:
		return j, "", fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(j.Payload), maxPayload)
	case j.Priority < 0 || j.Priority > 9:
		return j, "", fmt.Errorf("%w: priority %d not in 0..9", ErrInvalidJob, j.Priority)
	case j.MaxAttempts < 0 || j.Timeout < 0 || j.Retention < 0 || j.UniqueFor < 0:
		return j, "", fmt.Errorf("%w: negative MaxAttempts, Timeout, Retention or UniqueFor", ErrInvalidJob)
	case (j.UniqueKey == "") != (j.UniqueFor == 0):
		return j, "", fmt.Errorf("%w: UniqueKey and UniqueFor go together", ErrInvalidJob)
	}
	if err := checkHeaders(j.Headers); err != nil {
		return j, "", err
	}
	if len(j.Headers) == 0 {
		j.Headers = nil
	}
	if j.MaxAttempts == 0 {
		j.MaxAttempts = DefaultMaxAttempts
	}
	if j.Retention == 0 {
		j.Retention = DefaultRetention
	}
	if j.ID == "" {
		j.ID = randomID()
	}
	return j, FormatID(j.Queue, j.ID), nil
}

// checkHeaders validates Job.Headers: see its documentation.
func checkHeaders(h map[string]string) error {
	size := 0
	for k, v := range h {
		size += len(k) + len(v)
		if !validHeaderKey(k) {
			return fmt.Errorf("%w: header key %q: want 1 to %d bytes of [A-Za-z0-9._-]", ErrInvalidJob, k, MaxHeaderKey)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: header %q: value is not valid UTF-8", ErrInvalidJob, k)
		}
	}
	if size > MaxHeaderBytes {
		return fmt.Errorf("%w: %d bytes of keys and values, limit %d", ErrHeadersTooLarge, size, MaxHeaderBytes)
	}
	return nil
}

func validHeaderKey(k string) bool {
	if k == "" || len(k) > MaxHeaderKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// randomID returns a job name of 80 bits from crypto/rand: job IDs end
// up in status URLs, where guessing one would show another user's job.
func randomID() string {
	const digits = "0123456789abcdefghijklmnopqrstuv"
	var r [10]byte
	_, _ = rand.Read(r[:])
	var b [16]byte
	for i := range b { // 16 digits of 5 bits from the 80 random bits
		bit := i * 5
		v := uint16(r[bit/8])<<8 | uint16(r[min(bit/8+1, 9)])
		b[i] = digits[(v>>(11-bit%8))&31]
	}
	return string(b[:])
}

// DefaultBackoff is the wait before retry number attempt (1 after the
// first failure): exponential from 1 s, doubling, capped at 1 h, with
// jitter spreading each wait over [d/2, d) so that jobs failing together
// do not retry together.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Duration(math.Min(float64(time.Second)*math.Pow(2, float64(max(attempt, 1)-1)), float64(time.Hour)))
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}
