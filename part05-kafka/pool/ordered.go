package pool

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
)

// Ordered processes items with the same key in the order they were
// submitted, and items with different keys in parallel. Keys map to a fixed
// set of lanes (one goroutine and one buffer each) by hash, so memory is
// bounded by Lanes × Buffer however many keys there are; two keys that share
// a lane also share its order, which costs parallelism (a slow key delays
// the keys behind it), never correctness.
//
// For Kafka, key by partition to keep the partition's order (what the
// article's pool does, one lane per partition), or by the message key to keep
// per-aggregate order with more parallelism than partitions; committing
// offsets then needs per-partition tracking of the lowest unfinished offset.
type Ordered[K comparable, T any] struct {
	lanes []*Pool[T]
	seed  maphash.Seed
}

// NewOrdered starts lanes goroutines, each with a buffer of buffer items.
func NewOrdered[K comparable, T any](ctx context.Context, lanes, buffer int, onError func(T, error),
	process func(ctx context.Context, item T) error) (*Ordered[K, T], error) {
	if lanes < 1 {
		return nil, fmt.Errorf("pool: lanes = %d, want at least 1", lanes)
	}
	o := &Ordered[K, T]{lanes: make([]*Pool[T], lanes), seed: maphash.MakeSeed()}
	for i := range o.lanes {
		p, err := New(ctx, Config[T]{Workers: 1, Buffer: buffer, OnError: onError}, process)
		if err != nil {
			return nil, errors.Join(err, o.Shutdown(ctx))
		}
		o.lanes[i] = p
	}
	return o, nil
}

// Lane returns the lane key is processed on.
func (o *Ordered[K, T]) Lane(key K) int {
	return int(maphash.Comparable(o.seed, key) % uint64(len(o.lanes)))
}

// Submit queues item on key's lane, blocking while that lane's buffer is full.
func (o *Ordered[K, T]) Submit(ctx context.Context, key K, item T) error {
	return o.lanes[o.Lane(key)].Submit(ctx, item)
}

// Shutdown stops every lane's intake at once, then drains them all (see
// Pool.Shutdown) and joins their errors.
func (o *Ordered[K, T]) Shutdown(ctx context.Context) error {
	for _, l := range o.lanes {
		if l != nil {
			l.stop()
		}
	}
	var errs []error
	for _, l := range o.lanes {
		if l != nil {
			errs = append(errs, l.wait(ctx))
		}
	}
	return errors.Join(errs...)
}

// Stats sums the lanes' counters; Depth and MaxDepth are the deepest lane's.
func (o *Ordered[K, T]) Stats() Stats {
	var s Stats
	for _, l := range o.lanes {
		ls := l.Stats()
		s.Submitted += ls.Submitted
		s.Processed += ls.Processed
		s.Failed += ls.Failed
		s.Abandoned += ls.Abandoned
		s.BlockedSubmits += ls.BlockedSubmits
		s.Blocked += ls.Blocked
		s.Depth = max(s.Depth, ls.Depth)
		s.MaxDepth = max(s.MaxDepth, ls.MaxDepth)
	}
	return s
}
