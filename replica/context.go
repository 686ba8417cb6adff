package replica

import "context"

// The context options a ReplicaRouter honours, each with its reader:
//
//   - UsePrimary, read by UsesPrimary: reads go to the primary.
//   - WithKey, read by KeyOf: writes go to the key's primary under
//     Config.WriteSharder.
//   - Track and TrackFrom, read by MarkOf: reads see the writes made
//     through the context (a replica that applied Mark.Position, or the
//     primary until Mark.Until); a router records each write it makes
//     through such a context with RecordWrite.
//
// Router reads them itself; a ReplicaRouter written elsewhere reads them
// through these functions, and replicatest.Run checks that it honours
// each one.

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

// UsesPrimary reports whether ctx was made by UsePrimary (or derives from
// one): a ReplicaRouter's Reader must then return the primary's pool.
func UsesPrimary(ctx context.Context) bool { return usesPrimary(ctx) }

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

// KeyOf returns the key WithKey put in ctx (the innermost, when WithKey
// was applied more than once); ok is false when there is none. With a
// Config.WriteSharder, a ReplicaRouter's Writer must return the pool of
// the node named WriteSharder.Shard(key), or fail with ErrNoPrimary when
// that node is down.
func KeyOf(ctx context.Context) (key string, ok bool) {
	key, ok = ctx.Value(keyKey{}).(string)
	return key, ok
}
