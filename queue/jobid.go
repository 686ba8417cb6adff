package queue

import (
	"fmt"
	"strings"
)

// idSep separates a JobID's queue from the job's name. It is outside the
// alphabet of both, and unreserved in URLs (RFC 3986), so an ID is one
// URL path segment as it is, and reads as it is in logs.
const idSep = "~"

// slashSep is a second separator ParseID reads, so that an ID written
// "<queue>/<name>" (escaped as %2F in a path) names the same job.
const slashSep = "/"

// FormatID returns the JobID of the job name in queue: "<queue>~<name>".
// It does not validate; ParseID does.
func FormatID(queue, name string) JobID {
	return JobID(queue + idSep + name)
}

// ParseID splits an ID into its queue and the job's own name. It also
// reads "<queue>/<name>", the same ID with a slash for a separator. A
// malformed ID is an error wrapping ErrNotFound: no such job can exist.
func ParseID(id JobID) (queue, name string, err error) {
	q, n, ok := strings.Cut(string(id), idSep)
	if !ok {
		q, n, ok = strings.Cut(string(id), slashSep)
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
