package queue_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

type tReport struct {
	User  int      `json:"user"`
	Pages []string `json:"pages"`
}

func TestTypeRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{Queues: map[string]int{"reports": 1}})
		reports := queue.NewType[tReport]("report", nil)
		require.Equal(t, "report", reports.Name())
		got := make(chan tReport, 1)
		require.NoError(t, reports.HandleResult(w, func(ctx context.Context, r tReport, d *queue.Delivery) ([]byte, error) {
			got <- r
			return []byte(strconv.Itoa(len(r.Pages))), nil
		}))
		stop := wRun(t, w)

		in := tReport{User: 7, Pages: []string{"a", "b"}}
		id, err := reports.Enqueue(t.Context(), m, in, queue.Job{Queue: "reports", Type: "ignored", Priority: 3})
		require.NoError(t, err)
		info := wWait(t, m, id)
		require.Equal(t, queue.StateDone, info.State)
		require.Equal(t, "report", info.Type)
		require.Equal(t, 3, info.Priority)
		require.Equal(t, "2", string(info.Result))
		require.Equal(t, in, <-got)
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

func TestTypeMalformedPayloadIsDead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{})
		reports := queue.NewType[tReport]("report", nil)
		var calls atomic.Int32
		require.NoError(t, reports.Handle(w, func(context.Context, tReport, *queue.Delivery) error {
			calls.Add(1)
			return nil
		}))
		stop := wRun(t, w)
		id := wEnqueue(t, m, queue.Job{Type: "report", Payload: []byte(`{"user": "seven"`), MaxAttempts: 5})
		info := wWait(t, m, id)
		require.Equal(t, queue.StateDead, info.State)
		require.Equal(t, 1, info.Attempt)
		require.True(t, strings.HasPrefix(info.LastErr, "malformed payload: "), info.LastErr)
		require.Zero(t, calls.Load())
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

// tUpperCodec is a Codec of strings stored upper-case; it refuses empty
// strings and lower-case payloads.
type tUpperCodec struct{}

func (tUpperCodec) Marshal(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	return []byte(strings.ToUpper(s)), nil
}

func (tUpperCodec) Unmarshal(b []byte) (string, error) {
	if strings.ToUpper(string(b)) != string(b) {
		return "", errors.New("lower case")
	}
	return strings.ToLower(string(b)), nil
}

func TestTypeCustomCodec(t *testing.T) {
	words := queue.NewType[string]("word", tUpperCodec{})
	j, err := words.Job("hello", queue.Job{Queue: "q"})
	require.NoError(t, err)
	require.Equal(t, queue.Job{Queue: "q", Type: "word", Payload: []byte("HELLO")}, j)

	_, err = words.Job("", queue.Job{})
	require.ErrorIs(t, err, queue.ErrInvalidJob)
	m := wMemory(t, queue.MemoryConfig{})
	_, err = words.Enqueue(t.Context(), m, "", queue.Job{})
	require.ErrorIs(t, err, queue.ErrInvalidJob)

	v, err := words.Decode(&queue.Delivery{Job: j})
	require.NoError(t, err)
	require.Equal(t, "hello", v)
	_, err = words.Decode(&queue.Delivery{Job: queue.Job{Payload: []byte("x")}})
	require.ErrorIs(t, err, queue.ErrPermanent)
	require.EqualError(t, err, "malformed payload: lower case")
}

func TestTypeHandleInvalid(t *testing.T) {
	w := wNew(t, wMemory(t, queue.MemoryConfig{}), queue.WorkerConfig{})
	require.ErrorIs(t, queue.NewType[int]("n", nil).Handle(w, nil), queue.ErrInvalidConfig)
	require.ErrorIs(t, queue.NewType[int]("", nil).Handle(w, func(context.Context, int, *queue.Delivery) error { return nil }), queue.ErrInvalidConfig)
}

func FuzzTypeDecode(f *testing.F) {
	f.Add([]byte(`{"user":1,"pages":["a"]}`))
	f.Add([]byte(`{"user":"x"}`))
	f.Add([]byte(`null`))
	f.Add([]byte{0xff})
	reports := queue.NewType[tReport]("report", nil)
	f.Fuzz(func(t *testing.T, payload []byte) {
		_, err := reports.Decode(&queue.Delivery{Job: queue.Job{Type: "report", Payload: payload}})
		if err != nil {
			require.ErrorIs(t, err, queue.ErrPermanent)
			require.True(t, strings.HasPrefix(err.Error(), "malformed payload: "))
		}
	})
}
