package grpcbalance

import (
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/scaleout/scaleout/balance"
)

// TestOutcome: what each RPC error tells Choice.Done.
func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		err     error
		failure bool
		aborted bool
	}{
		{nil, false, false},
		{status.Error(codes.OK, ""), false, false},
		{status.Error(codes.Canceled, "client went away"), false, true},
		{status.FromContextError(context.Canceled).Err(), false, true},
		{status.Error(codes.Unavailable, "connection refused"), true, false},
		{status.Error(codes.DeadlineExceeded, "too slow"), true, false},
		{status.Error(codes.Internal, "panic"), true, false},
		{status.Error(codes.Unknown, "?"), true, false},
		{status.Error(codes.DataLoss, "torn"), true, false},
		{io.ErrUnexpectedEOF, true, false}, // no status: Unknown
		{status.Error(codes.NotFound, "no such user"), false, false},
		{status.Error(codes.InvalidArgument, "bad id"), false, false},
		{status.Error(codes.PermissionDenied, "no"), false, false},
		{status.Error(codes.FailedPrecondition, "no"), false, false},
		{status.Error(codes.Unimplemented, "no"), false, false},
		{status.Error(codes.ResourceExhausted, "quota"), false, false},
	} {
		got := outcome(tc.err, IsFailure)
		switch {
		case tc.aborted:
			if !errors.Is(got, balance.ErrAborted) {
				t.Errorf("outcome(%v) = %v, want ErrAborted", tc.err, got)
			}
		case tc.failure:
			if got != tc.err {
				t.Errorf("outcome(%v) = %v, want the error itself", tc.err, got)
			}
		case got != nil:
			t.Errorf("outcome(%v) = %v, want nil (a success)", tc.err, got)
		}
	}
	// A Config.IsFailure of the caller's decides, but never for a
	// cancellation.
	notFound := func(err error) bool { return status.Code(err) == codes.NotFound }
	if err := status.Error(codes.NotFound, "x"); outcome(err, notFound) != err {
		t.Error("IsFailure of the caller's ignored")
	}
	if outcome(status.Error(codes.Unavailable, "x"), notFound) != nil {
		t.Error("IsFailure of the caller's ignored for a success")
	}
	if err := outcome(status.Error(codes.Canceled, "x"), func(error) bool { return true }); !errors.Is(err, balance.ErrAborted) {
		t.Errorf("cancellation with a custom IsFailure: %v", err)
	}
}
