package rediselector

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/failover"
)

// fenceSetScript writes KEYS[1] = ARGV[1] only when ARGV[2] (a decimal
// token) is at least the token stored in KEYS[2], then stores ARGV[2] in
// KEYS[2]. Tokens are compared as decimal strings (length, then bytes), so
// every uint64 compares exactly, beyond Lua's 2^53.
var fenceSetScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[2])
local tok = ARGV[2]
if cur then
  if #tok < #cur or (#tok == #cur and tok < cur) then
    return 0
  end
end
redis.call('SET', KEYS[2], tok)
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

// FenceKey returns the key in which FenceSet keeps the highest token that
// wrote key. It lies in key's Redis Cluster slot:
//
//   - a key with a hash tag ("user:{42}:profile") gets key + ":fence",
//     which has the same tag;
//   - a key without "}" ("orders") gets "{" + key + "}:fence", whose tag is
//     the whole key, which is what Redis hashes for a key without a tag;
//   - a key that has "}" but no valid hash tag ("a}b", "a{}b") cannot be
//     matched to its slot and is refused: give it a hash tag.
func FenceKey(key string) (string, error) {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key + ":fence", nil
		}
	}
	if strings.IndexByte(key, '}') < 0 {
		return "{" + key + "}:fence", nil
	}
	return "", fmt.Errorf("failover: key %q has \"}\" but no hash tag; its fence key cannot share its slot", key)
}

// FenceSet writes value to the Redis key key, in one Lua script, only if
// token is at least the highest token that has written key before (kept
// at FenceKey(key)); otherwise it writes nothing and returns
// failover.ErrStaleToken. A leader passes its Term.Token: once a newer leader has
// written, the writes of every older one are refused, even those of a
// leader that was paused and does not yet know that its term ended.
//
// Equal tokens are accepted, so one leader can write many times. The fence
// key never expires: deleting it (or losing it in a Redis restart without
// an append-only file) lets stale writers through again.
func FenceSet(ctx context.Context, c redis.Scripter, key string, value []byte, token uint64) error {
	fk, err := FenceKey(key)
	if err != nil {
		return err
	}
	n, err := fenceSetScript.Run(ctx, c, []string{key, fk}, value, strconv.FormatUint(token, 10)).Int()
	if err != nil {
		return fmt.Errorf("failover: fenced write of %q: %w", key, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: token %d for %q", failover.ErrStaleToken, token, key)
	}
	return nil
}
