package patterns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is what every pattern needs to reach the cache.
type Config struct {
	// Redis is the cache.
	Redis redis.Cmdable
	// Prefix namespaces keys: Prefix + "product:" + id (the article's key shape).
	Prefix string
	// TTL of cached products. Default 5 min.
	TTL time.Duration
	// NegativeTTL is how long a "not found" is remembered, so a flood of lookups for
	// an absent ID (a typo, a scraper, an attack) reaches the database once per
	// NegativeTTL instead of once per request. Keep it short: an insert of that ID is
	// invisible to readers until it lapses, unless the write clears it (every
	// pattern's Put does but write-around's). Default 30 s; negative disables.
	NegativeTTL time.Duration
	// LoadTimeout bounds one shared load of ReadThrough and WriteThrough, and each
	// caller's wait for it. Default 5 s.
	LoadTimeout time.Duration
}

// cache is the Redis side shared by the patterns. A value is "<version>:<json>"; the
// tombstone for "not found" is "-". The version prefix lets a Lua script compare
// versions without decoding JSON.
type cache struct {
	rdb    redis.Cmdable
	prefix string
	ttl    time.Duration
	negTTL time.Duration
}

var errMiss = errors.New("patterns: cache miss")

const tombstone = "-"

func newCache(c Config) cache {
	if c.Redis == nil {
		panic("patterns: Config.Redis is nil")
	}
	if c.TTL <= 0 {
		c.TTL = 5 * time.Minute
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = 30 * time.Second
	}
	return cache{rdb: c.Redis, prefix: c.Prefix, ttl: c.TTL, negTTL: c.NegativeTTL}
}

// Key returns the Redis key for a product ID under prefix.
func Key(prefix, id string) string { return prefix + "product:" + id }

func (c cache) key(id string) string { return Key(c.prefix, id) }

// get returns the product, ErrNotFound for a tombstone, errMiss for no key, or a
// Redis error.
func (c cache) get(ctx context.Context, id string) (Product, error) {
	b, err := c.rdb.Get(ctx, c.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Product{}, errMiss
	}
	if err != nil {
		return Product{}, err
	}
	return decode(b)
}

func decode(b []byte) (Product, error) {
	if string(b) == tombstone {
		return Product{}, ErrNotFound
	}
	_, body, ok := bytes.Cut(b, []byte{':'})
	if !ok {
		return Product{}, fmt.Errorf("patterns: malformed cache value %q", b)
	}
	var p Product
	err := json.Unmarshal(body, &p)
	return p, err
}

func encode(p Product) ([]byte, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return append(strconv.AppendInt(nil, p.Version, 10), append([]byte{':'}, body...)...), nil
}

// casSet writes ARGV[1] unless the key holds a version ≥ ARGV[2]. A tombstone or a
// missing key is always replaced.
var casSet = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= '-' then
  local v = tonumber(string.match(cur, '^(%d+):'))
  if v and v >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`)

// put caches p unless the cache already holds the same or a newer version, so that
// late writers and late fills cannot move the cache backwards.
func (c cache) put(ctx context.Context, p Product) error {
	b, err := encode(p)
	if err != nil {
		return err
	}
	return casSet.Run(ctx, c.rdb, []string{c.key(p.ID)}, b, p.Version, c.ttl.Milliseconds()).Err()
}

// overwrite caches p whatever is there (write-behind: the buffer, not the database,
// is the newest copy, and versions are assigned only when it is flushed).
func (c cache) overwrite(ctx context.Context, p Product) error {
	b, err := encode(p)
	if err != nil {
		return err
	}
	return c.rdb.Set(ctx, c.key(p.ID), b, c.ttl).Err()
}

// putAbsent caches p only where the key is missing, never replacing what a writer
// put there (write-behind's read fills: its own entries carry no version to compare).
func (c cache) putAbsent(ctx context.Context, p Product) error {
	b, err := encode(p)
	if err != nil {
		return err
	}
	return c.rdb.SetNX(ctx, c.key(p.ID), b, c.ttl).Err()
}

func (c cache) putMissing(ctx context.Context, id string) error {
	if c.negTTL < 0 {
		return nil
	}
	// NX: never replace a real value that a writer put there in the meantime.
	return c.rdb.SetNX(ctx, c.key(id), tombstone, c.negTTL).Err()
}

func (c cache) del(ctx context.Context, id string) error {
	return c.rdb.Del(ctx, c.key(id)).Err()
}

// lookup is the read half of cache-aside: cache, then load on a miss, then fill
// (or remember "not found"). A Redis error falls through to load: the database
// carries the load while the cache is down, instead of the service failing.
func (c cache) lookup(ctx context.Context, id string, load func(context.Context, string) (Product, error)) (Product, error) {
	if err := ValidateID(id); err != nil {
		return Product{}, err
	}
	p, err := c.get(ctx, id)
	if err == nil || errors.Is(err, ErrNotFound) {
		return p, err
	}
	return c.loadAndFill(ctx, id, load)
}

func (c cache) loadAndFill(ctx context.Context, id string, load func(context.Context, string) (Product, error)) (Product, error) {
	p, err := load(ctx, id)
	if errors.Is(err, ErrNotFound) {
		_ = c.putMissing(ctx, id) // best effort, like every fill
		return Product{}, ErrNotFound
	}
	if err != nil {
		return Product{}, err
	}
	// A failed fill costs the next reader one more database query, nothing else.
	_ = c.put(ctx, p)
	return p, nil
}
