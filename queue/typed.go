package queue

import (
	"context"
	"encoding/json"
	"fmt"
)

// A Codec turns a job's input into a payload and back.
type Codec[T any] interface {
	Marshal(v T) ([]byte, error)
	Unmarshal(b []byte) (T, error)
}

// JSONCodec is the default Codec: encoding/json.
type JSONCodec[T any] struct{}

// Marshal implements Codec.
func (JSONCodec[T]) Marshal(v T) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSONCodec[T]) Unmarshal(b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

// A Type is a job type whose payload is a T, encoded by a Codec: it
// enqueues values and hands its handler decoded ones.
//
//	reports := queue.NewType[Report]("report", nil)
//	id, err := reports.Enqueue(ctx, q, Report{User: 7}, queue.Job{Queue: "reports"})
//	err = reports.Handle(w, func(ctx context.Context, r Report, d *queue.Delivery) error { ... })
//	// or, for a job with a result:
//	err = reports.HandleResult(w, func(ctx context.Context, r Report, d *queue.Delivery) ([]byte, error) { ... })
type Type[T any] struct {
	name  string
	codec Codec[T]
}

// NewType returns the job type name with payloads of T encoded by codec
// (nil means JSONCodec).
func NewType[T any](name string, codec Codec[T]) *Type[T] {
	if codec == nil {
		codec = JSONCodec[T]{}
	}
	return &Type[T]{name: name, codec: codec}
}

// Name returns the job type.
func (t *Type[T]) Name() string { return t.name }

// Job returns opts with Type set to t's name and Payload to v encoded.
func (t *Type[T]) Job(v T, opts Job) (Job, error) {
	b, err := t.codec.Marshal(v)
	if err != nil {
		return Job{}, fmt.Errorf("%w: encoding a %s payload: %w", ErrInvalidJob, t.name, err)
	}
	opts.Type = t.name
	opts.Payload = b
	return opts, nil
}

// Enqueue enqueues a job of t with input v; opts gives the other fields of
// the Job (its Type and Payload are replaced).
func (t *Type[T]) Enqueue(ctx context.Context, q JobQueue, v T, opts Job) (JobID, error) {
	j, err := t.Job(v, opts)
	if err != nil {
		return "", err
	}
	return q.Enqueue(ctx, j)
}

// Decode decodes d's payload. A payload that does not decode is an error
// wrapping ErrPermanent, reading "malformed payload: ...".
func (t *Type[T]) Decode(d *Delivery) (T, error) {
	v, err := t.codec.Unmarshal(d.Job.Payload)
	if err != nil {
		return v, Permanent(fmt.Errorf("malformed payload: %w", err))
	}
	return v, nil
}

// Handler returns a Handler that decodes each job's payload and calls fn
// with it. A payload that does not decode fails the job permanently (it
// goes to the dead-letter set with the reason "malformed payload: ...")
// without calling fn.
func (t *Type[T]) Handler(fn func(ctx context.Context, v T, d *Delivery) error) Handler {
	return HandlerFunc(func(ctx context.Context, d *Delivery) error {
		v, err := t.Decode(d)
		if err != nil {
			return err
		}
		return fn(ctx, v, d)
	})
}

// ResultHandler is like Handler for a fn that returns the job's result,
// which the Worker acknowledges the job with when err is nil (see
// ResultFunc).
func (t *Type[T]) ResultHandler(fn func(ctx context.Context, v T, d *Delivery) ([]byte, error)) Handler {
	return ResultFunc(func(ctx context.Context, d *Delivery) ([]byte, error) {
		v, err := t.Decode(d)
		if err != nil {
			return nil, err
		}
		return fn(ctx, v, d)
	})
}

// HandleResult registers fn, which returns the job's result, on w for the
// jobs of t; see ResultHandler and Worker.Handle.
func (t *Type[T]) HandleResult(w *Worker, fn func(ctx context.Context, v T, d *Delivery) ([]byte, error)) error {
	if fn == nil {
		return w.Handle(t.name, nil)
	}
	return w.Handle(t.name, t.ResultHandler(fn))
}

// Handle registers fn on w for the jobs of t; see Handler and
// Worker.Handle.
func (t *Type[T]) Handle(w *Worker, fn func(ctx context.Context, v T, d *Delivery) error) error {
	if fn == nil {
		return w.Handle(t.name, nil)
	}
	return w.Handle(t.name, t.Handler(fn))
}
