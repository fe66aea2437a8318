package stampede

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// The cross-process lock test (TestIntegrationLockAcrossProcesses) runs this test
// binary again as child processes; TestMain sends a child here instead of to the tests.
const (
	lockChildEnv   = "PART03_LOCK_CHILD_PREFIX"
	lockChildPeers = "PART03_LOCK_CHILD_PEERS" // 0: with RedisLock; else without it, and the number of processes

	lockChildCallers = 20
)

// lockChild is one instance of a service: it reports ready, waits for the parent's
// start signal, then sends lockChildCallers concurrent reads of one missing key
// through its own Loader (own Group, shared Redis store and lock), whose fetch
// counts itself in Redis and takes 300 ms. It prints the value every caller got.
// Without the lock (peers > 0), each fetch also waits until all peers are fetching,
// so that a process the machine starts late cannot find the others' entry and make
// the "one rebuild per process" count depend on scheduling.
func lockChild(prefix string, useLock bool, peers int) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "lock child:", err); return 1 }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: stack.RedisAddr()})
	defer func() { _ = rdb.Close() }()
	if err := rdb.Incr(ctx, prefix+"ready").Err(); err != nil {
		return fail(err)
	}
	for {
		n, err := rdb.Exists(ctx, prefix+"go").Result()
		if err != nil {
			return fail(err)
		}
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	l := &Loader[string]{
		Store: RedisStore[string]{Client: rdb, Prefix: prefix + "entry:"}, TTL: time.Minute,
		Group: &Group[string]{}, Timeout: 30 * time.Second,
	}
	if useLock {
		l.Lock = &RedisLock{Client: rdb, Prefix: prefix + "lock:", Wait: 10 * time.Second}
	}
	fetch := func(ctx context.Context) (string, error) {
		n, err := rdb.Incr(ctx, prefix+"rebuilds").Result()
		if err != nil {
			return "", err
		}
		for ; int(n) < peers; time.Sleep(time.Millisecond) {
			if n, err = rdb.Get(ctx, prefix+"rebuilds").Int64(); err != nil {
				return "", err
			}
		}
		time.Sleep(300 * time.Millisecond)
		return fmt.Sprintf("built by pid %d", os.Getpid()), nil
	}
	values := make([]string, lockChildCallers)
	errs := make([]error, lockChildCallers)
	var wg sync.WaitGroup
	for i := range lockChildCallers {
		wg.Go(func() { values[i], errs[i] = l.Get(ctx, "product:hot", fetch) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	for _, v := range values[1:] {
		if v != values[0] {
			return fail(fmt.Errorf("callers of one process got %q and %q", values[0], v))
		}
	}
	fmt.Println(values[0])
	return 0
}
