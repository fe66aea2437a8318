package shard

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	jump "github.com/dgryski/go-jump"
)

// Router names the shard that owns a key.
type Router interface {
	// Route returns the index, in [0, Shards()), of the shard that owns key.
	Route(ctx context.Context, key int64) (int, error)
	// Shards is how many shards the router spreads keys over.
	Shards() int
	// String describes the router in one line.
	String() string
}

// BatchRouter is a Router that routes many keys in one round trip (a
// directory), as Vitess's vindexes map a batch of ids at once.
type BatchRouter interface {
	Router
	RouteAll(ctx context.Context, keys []int64) ([]int, error)
}

// RouteAll routes every key: in one call if r is a BatchRouter, else key by key.
func RouteAll(ctx context.Context, r Router, keys []int64) ([]int, error) {
	if b, ok := r.(BatchRouter); ok {
		return b.RouteAll(ctx, keys)
	}
	out := make([]int, len(keys))
	for i, k := range keys {
		s, err := r.Route(ctx, k)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// ErrNoShard is matched (errors.Is) by every error for a key no shard owns.
var ErrNoShard = errors.New("no shard owns the key")

// NoShardError reports a key outside every range, or missing from a directory.
type NoShardError struct {
	Key    int64
	Router string // the router's String()
}

func (e *NoShardError) Error() string {
	return fmt.Sprintf("shard: no shard owns key %d in %s", e.Key, e.Router)
}

// Is makes errors.Is(err, ErrNoShard) true.
func (e *NoShardError) Is(target error) bool { return target == ErrNoShard }

// KeyspaceID is the 64-bit hash every hashing router starts from: xxhash64 of
// the key's 8 big-endian bytes. It is stable across processes, releases and
// machines (unlike Go's map hash), which a placement stored on disk needs.
func KeyspaceID(key int64) uint64 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(key))
	return xxhash.Sum64(b[:])
}

// Range gives shard i the keys in [lower[i], lower[i+1]), and the last shard
// [lower[n-1], end] (end included, so math.MaxInt64 covers every key).
type Range struct {
	lower []int64
	end   int64
}

// NewRange returns the range router over shards starting at lower (strictly
// increasing) and ending at end, inclusive.
func NewRange(lower []int64, end int64) (*Range, error) {
	if len(lower) == 0 {
		return nil, errors.New("shard: a range router needs at least one shard")
	}
	for i := 1; i < len(lower); i++ {
		if lower[i] <= lower[i-1] {
			return nil, fmt.Errorf("shard: range bounds must increase: %d then %d", lower[i-1], lower[i])
		}
	}
	if end < lower[len(lower)-1] {
		return nil, fmt.Errorf("shard: range end %d is below the last shard's start %d", end, lower[len(lower)-1])
	}
	return &Range{lower: slices.Clone(lower), end: end}, nil
}

// EvenRange splits the ids [lo, hi] into n ranges of equal width (the last
// takes the remainder).
func EvenRange(lo, hi int64, n int) *Range {
	if n < 1 || hi < lo || uint64(hi-lo) < uint64(n-1) {
		panic(fmt.Sprintf("shard: EvenRange(%d, %d, %d): need n ≥ 1 and at least n ids", lo, hi, n))
	}
	span := uint64(hi) - uint64(lo) // ids in the range, minus one: no overflow even for all of int64
	width := (span / uint64(n)) + (span%uint64(n)+1)/uint64(n)
	lower := make([]int64, n)
	for i := range lower {
		lower[i] = lo + int64(uint64(i)*width) // wraps past MaxInt64 as two's complement: the right id
	}
	r, _ := NewRange(lower, hi)
	return r
}

// Lower returns the shards' first keys.
func (r *Range) Lower() []int64 { return slices.Clone(r.lower) }

// Route implements Router; it never blocks and ignores ctx.
func (r *Range) Route(_ context.Context, key int64) (int, error) {
	if key < r.lower[0] || key > r.end {
		return 0, &NoShardError{Key: key, Router: r.String()}
	}
	// The last range whose lower bound is ≤ key.
	i, found := slices.BinarySearch(r.lower, key)
	if !found {
		i--
	}
	return i, nil
}

// Shards implements Router.
func (r *Range) Shards() int { return len(r.lower) }

func (r *Range) String() string {
	var b strings.Builder
	b.WriteString("range")
	for i, lo := range r.lower {
		hi := r.end
		if i+1 < len(r.lower) {
			hi = r.lower[i+1] - 1
		}
		fmt.Fprintf(&b, " %d:[%s..%s]", i, bound(lo), bound(hi))
	}
	return b.String()
}

func bound(v int64) string {
	switch v {
	case math.MinInt64:
		return "-∞"
	case math.MaxInt64:
		return "+∞"
	}
	return fmt.Sprint(v)
}

// Jump routes by jump consistent hash (Lamping and Veach, 2014) of
// KeyspaceID(key): from n to n+1 shards a key moves with probability 1/(n+1),
// and only to the new shard. Shards can only be added or removed at the end.
type Jump struct{ N int }

// Route implements Router.
func (j Jump) Route(_ context.Context, key int64) (int, error) {
	return int(jump.Hash(KeyspaceID(key), j.N)), nil
}

// Shards implements Router.
func (j Jump) Shards() int { return j.N }

func (j Jump) String() string { return fmt.Sprintf("jump hash, %d shards", j.N) }

// Modulo routes by KeyspaceID(key) % N: even, stable while N is, and a bad
// plan for growth: from N to N+1 shards a key stays only if both remainders
// agree, so about N/(N+1) of the rows move. PostgreSQL's hash partitioning
// (MODULUS, REMAINDER) is this router.
type Modulo struct{ N int }

// Route implements Router.
func (m Modulo) Route(_ context.Context, key int64) (int, error) {
	return int(KeyspaceID(key) % uint64(m.N)), nil
}

// Shards implements Router.
func (m Modulo) Shards() int { return m.N }

func (m Modulo) String() string { return fmt.Sprintf("hash %% %d", m.N) }

// KeyRange is Vitess's layout: the keyspace id KeyspaceID(key) and shards that
// own contiguous ranges of it, split evenly. Resharding splits ranges, so rows
// move only between a range's old and new owners, but an even 2→3 split moves
// about half of them.
type KeyRange struct {
	lower []uint64 // shard i owns [lower[i], lower[i+1]); the last to 2^64
}

// NewKeyRange splits the keyspace into n equal ranges.
func NewKeyRange(n int) *KeyRange {
	if n < 1 {
		panic("shard: NewKeyRange needs n ≥ 1")
	}
	k := &KeyRange{lower: make([]uint64, n)}
	for i := range k.lower {
		k.lower[i] = mulDiv(uint64(i), n)
	}
	return k
}

// mulDiv returns ⌊i·2^64 / n⌋ for i < n: with 2^64 − 1 = q·n + r,
// i·2^64 / n = q·i + (r+1)·i / n, and (r+1)·i ≤ n·i fits in 64 bits.
func mulDiv(i uint64, n int) uint64 {
	q, r := math.MaxUint64/uint64(n), math.MaxUint64%uint64(n)
	return q*i + (r+1)*i/uint64(n)
}

// Route implements Router.
func (k *KeyRange) Route(_ context.Context, key int64) (int, error) {
	id := KeyspaceID(key)
	i, found := slices.BinarySearch(k.lower, id)
	if !found {
		i--
	}
	return i, nil
}

// Shards implements Router.
func (k *KeyRange) Shards() int { return len(k.lower) }

// String names the shards as Vitess does: hex prefixes of the keyspace id,
// "-55", "55-aa", "aa-".
func (k *KeyRange) String() string {
	names := make([]string, len(k.lower))
	for i, lo := range k.lower {
		a, b := "", ""
		if i > 0 {
			a = fmt.Sprintf("%02x", lo>>56)
		}
		if i+1 < len(k.lower) {
			b = fmt.Sprintf("%02x", k.lower[i+1]>>56)
		}
		names[i] = a + "-" + b
	}
	return "keyspace-id ranges " + strings.Join(names, " ")
}
