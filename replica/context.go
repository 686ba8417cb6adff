package replica

import "context"

type (
	primaryKey struct{}
	keyKey     struct{}
)

// UsePrimary returns a context whose reads go to the primary, for a read
// that must see the latest data whatever the lag (a balance check before
// a payment, say).
func UsePrimary(ctx context.Context) context.Context {
	return context.WithValue(ctx, primaryKey{}, true)
}

func usesPrimary(ctx context.Context) bool {
	b, _ := ctx.Value(primaryKey{}).(bool)
	return b
}

// WithKey returns a context whose writes go to the primary that owns key
// under Config.WriteSharder (master-master by key). Without a
// WriteSharder the key is ignored.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyKey{}, key)
}
