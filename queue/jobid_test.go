package queue_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

func TestFormatAndParseID(t *testing.T) {
	id := queue.FormatID("mail:high", "order:7")
	require.Equal(t, queue.JobID("mail:high~order:7"), id)
	require.Equal(t, string(id), url.PathEscape(string(id)), "one URL path segment as it is")
	qn, name, err := queue.ParseID(id)
	require.NoError(t, err)
	require.Equal(t, "mail:high", qn)
	require.Equal(t, "order:7", name)

	qn, name, err = queue.ParseID("mail:high/order:7") // the slash form
	require.NoError(t, err)
	require.Equal(t, "mail:high", qn)
	require.Equal(t, "order:7", name)

	for _, bad := range []queue.JobID{"", "q", "q~", "~n", "q/", "/n", "q~a~b", "q/a/b", "q~a/b", "a b~c", "q~ä"} {
		_, _, err := queue.ParseID(bad)
		require.ErrorIs(t, err, queue.ErrNotFound, "%q", bad)
	}
}

func FuzzParseID(f *testing.F) {
	f.Add("default~abc")
	f.Add("default/abc")
	f.Add("a~b/c")
	f.Fuzz(func(t *testing.T, s string) {
		qn, name, err := queue.ParseID(queue.JobID(s))
		if err != nil {
			return
		}
		id := queue.FormatID(qn, name)
		qn2, name2, err := queue.ParseID(id)
		require.NoError(t, err)
		require.Equal(t, qn, qn2)
		require.Equal(t, name, name2)
		require.Equal(t, string(id), url.PathEscape(string(id)))
	})
}
