package grpcbalance

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/scaleout/scaleout/balance"
)

// IsFailure is the default Config.IsFailure: an RPC failed on the
// backend's account when its status says the backend could not serve it —
// Unavailable (no connection, or it broke), DeadlineExceeded (no answer in
// time, as balance/httpclient counts a caller's deadline), Internal,
// Unknown (which is also what an error without a status reads as) and
// DataLoss. Every other code is the application's answer, which a healthy
// backend gives: NotFound, InvalidArgument, PermissionDenied,
// FailedPrecondition, Unimplemented and the like count as successes, and
// so does ResourceExhausted, which gRPC also gives for a message over the
// client's own size limit and quota systems for one user's excess.
func IsFailure(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss:
		return true
	}
	return false
}

// outcome turns an RPC's error into what Choice.Done is told: nil for a
// success, an error wrapping balance.ErrAborted for a cancellation (the
// caller gave up: it says nothing of the backend), the error itself for a
// failure.
func outcome(err error, isFailure func(error) bool) error {
	switch {
	case err == nil:
		return nil
	case status.Code(err) == codes.Canceled:
		return fmt.Errorf("%w: %w", balance.ErrAborted, err)
	case isFailure(err):
		return err
	}
	return nil
}
