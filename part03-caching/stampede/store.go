package stampede

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps entries in Redis as small JSON envelopes, so every instance of a
// service sees the same expiry and δ. Keys are Prefix+key.
type RedisStore[V any] struct {
	Client redis.Cmdable
	Prefix string
}

type envelope[V any] struct {
	V V     `json:"v"`
	D int64 `json:"d"` // δ in nanoseconds: keeps sub-millisecond recomputes (errata)
	X int64 `json:"x"` // expiry, Unix nanoseconds
}

// Get implements Store.
func (s RedisStore[V]) Get(ctx context.Context, key string) (Entry[V], bool, error) {
	b, err := s.Client.Get(ctx, s.Prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entry[V]{}, false, nil
	}
	if err != nil {
		return Entry[V]{}, false, err
	}
	var env envelope[V]
	if err := json.Unmarshal(b, &env); err != nil {
		return Entry[V]{}, false, err
	}
	return Entry[V]{Value: env.V, Delta: time.Duration(env.D), Expiry: time.Unix(0, env.X)}, true, nil
}

// Set implements Store; keep becomes the Redis TTL (0 = no TTL).
func (s RedisStore[V]) Set(ctx context.Context, key string, e Entry[V], keep time.Duration) error {
	b, err := json.Marshal(envelope[V]{V: e.Value, D: int64(e.Delta), X: e.Expiry.UnixNano()})
	if err != nil {
		return err
	}
	return s.Client.Set(ctx, s.Prefix+key, b, keep).Err()
}

// MapStore is an in-process Store for tests and single-instance use. It never drops
// entries by itself: the Loader decides what is expired and what may be served stale.
type MapStore[V any] struct {
	mu sync.Mutex
	m  map[string]Entry[V]
}

// Get implements Store.
func (s *MapStore[V]) Get(_ context.Context, key string) (Entry[V], bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	return e, ok, nil
}

// Set implements Store.
func (s *MapStore[V]) Set(_ context.Context, key string, e Entry[V], _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]Entry[V])
	}
	s.m[key] = e
	return nil
}
