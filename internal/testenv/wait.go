package testenv

import (
	"context"
	"time"
)

// poll calls cond at once and then every interval until it reports true (poll returns
// nil), returns an error (poll returns it) or ctx ends (poll returns ctx.Err()).
func poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		t.Reset(interval)
	}
}
