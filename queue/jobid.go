package queue

import (
	"fmt"
	"strings"
)

// idSep separates a JobID's queue from the job's name. It is outside the
// alphabet of both, and unreserved in URLs (RFC 3986), so an ID is one
// URL path segment as it is, and reads as it is in logs.
const idSep = "~"

// legacySep is the separator of IDs made before idSep; ParseID still
// reads them, so IDs stored or handed out earlier keep naming their jobs.
const legacySep = "/"

// FormatID returns the JobID of the job name in queue: "<queue>~<name>".
// It does not validate; ParseID does.
func FormatID(queue, name string) JobID {
	return JobID(queue + idSep + name)
}

// ParseID splits an ID into its queue and the job's own name. It also
// reads the form "<queue>/<name>" of earlier IDs. A malformed ID is an
// error wrapping ErrNotFound: no such job can exist.
func ParseID(id JobID) (queue, name string, err error) {
	q, n, ok := strings.Cut(string(id), idSep)
	if !ok {
		q, n, ok = strings.Cut(string(id), legacySep)
	}
	if !ok || !validName(q) || !validName(n) {
		return "", "", fmt.Errorf("%w: malformed job ID %q", ErrNotFound, id)
	}
	return q, n, nil
}

// canonicalID returns id in the form FormatID makes, or id itself when it
// is malformed.
func canonicalID(id JobID) JobID {
	if q, n, err := ParseID(id); err == nil {
		return FormatID(q, n)
	}
	return id
}
