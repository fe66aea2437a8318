package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part06-locks/fencing"
)

// The cross-process tests run this test binary again as child processes;
// TestMain sends a child here instead of to the tests. The environment says
// what the child does:
//
//	PART06_CHILD=holder  take the lock, print "token N", wait for a line on
//	                     stdin (the parent stops and resumes the process
//	                     meanwhile), then write with that token and print the
//	                     outcome of the write and of ExecuteWithLock.
//	PART06_CHILD=cycles  run PART06_GOROUTINES goroutines through
//	                     PART06_CYCLES lock cycles in all, checking mutual
//	                     exclusion from inside each critical section, until
//	                     done or until stdin closes (the parent gave up or
//	                     died): the parent decides how long, by progress.
const (
	childEnv      = "PART06_CHILD"
	childBackend  = "PART06_BACKEND" // redlock | etcd
	childResource = "PART06_RESOURCE"
	childTTL      = "PART06_TTL"
	childRoutines = "PART06_GOROUTINES"
	childCycles   = "PART06_CYCLES"
)

// childMain runs a child process when the environment asks for one; ok is
// false in an ordinary test run.
func childMain() (code int, ok bool) {
	kind := os.Getenv(childEnv)
	if kind == "" {
		return 0, false
	}
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "child:", err); return 1 }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	redis.SetLogger(quiet{})
	l, closeLocker, err := stackLocker(os.Getenv(childBackend))
	if err != nil {
		return fail(err), true
	}
	defer closeLocker()
	pool, store, err := stackFence(ctx)
	if err != nil {
		return fail(err), true
	}
	defer pool.Close()
	resource := os.Getenv(childResource)
	switch kind {
	case "holder":
		ttl, err := time.ParseDuration(os.Getenv(childTTL))
		if err != nil {
			return fail(err), true
		}
		stdin := bufio.NewReader(os.Stdin)
		err = l.ExecuteWithLock(ctx, resource, ttl, func(ctx context.Context, token int64) error {
			fmt.Printf("token %d\n", token)
			if _, err := stdin.ReadString('\n'); err != nil { // the parent stops this process here
				return err
			}
			// The write was decided before the pause; it goes out as it is.
			err := store.Write(context.WithoutCancel(ctx), resource, token, fmt.Sprintf("child pid %d", os.Getpid()))
			fmt.Printf("write: %v\n", err)
			return err
		})
		fmt.Printf("result: %q\n", fmt.Sprint(err))
		return 0, true
	case "cycles":
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel(errors.New("stdin closed: the parent stopped the run"))
		}()
		rdb := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), PoolSize: 64, MaxRetries: -1, ContextTimeoutEnabled: true})
		defer rdb.Close()
		goroutines, err1 := strconv.Atoi(os.Getenv(childRoutines))
		cycles, err2 := strconv.Atoi(os.Getenv(childCycles))
		if err := errors.Join(err1, err2); err != nil {
			return fail(err), true
		}
		if err := rdb.Incr(ctx, resource+":ready").Err(); err != nil { // then wait for the parent's start
			return fail(err), true
		}
		for n, _ := rdb.Exists(ctx, resource+":go").Result(); n == 0; n, _ = rdb.Exists(ctx, resource+":go").Result() {
			time.Sleep(time.Millisecond)
		}
		if err := cycleRun(ctx, l, rdb, store, resource, goroutines, cycles); err != nil {
			return fail(err), true
		}
		fmt.Println("done")
		return 0, true
	}
	return fail(fmt.Errorf("unknown %s=%q", childEnv, kind)), true
}

// cycleRun runs goroutines goroutines through cycles lock cycles on
// resource. Inside each section: INCR resource:inside must answer 1 (else
// resource:overlaps is incremented), a counter is read and written back + 1
// (an overlap would lose an increment), and the section's token is written to
// the fencing store, which must accept it (an overlap or a token out of order
// would be refused). The INCR and the read go in one pipeline, the write
// and the DECR in one MULTI, after the fencing write.
func cycleRun(ctx context.Context, l Locker, rdb *redis.Client, store fencing.Store, resource string, goroutines, cycles int) error {
	var (
		left = int64(cycles)
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		left--
		return left >= 0
	}
	for range goroutines {
		wg.Go(func() {
			for take() {
				err := l.ExecuteWithLock(ctx, resource, 10*time.Second, func(ctx context.Context, token int64) error {
					// One round trip in, one out: the run's length is the
					// lock's hand-overs, not this bookkeeping.
					var in *redis.IntCmd
					var get *redis.StringCmd
					if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
						in = p.Incr(ctx, resource+":inside")
						get = p.Get(ctx, resource+":counter")
						return nil
					}); err != nil && !errors.Is(err, redis.Nil) {
						return err
					}
					n, err := get.Int64()
					if err != nil && !errors.Is(err, redis.Nil) {
						return err
					}
					if err := store.Write(ctx, resource, token, strconv.FormatInt(n+1, 10)); err != nil {
						rdb.Incr(ctx, resource+":refused")
						return err
					}
					_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
						if in.Val() != 1 {
							p.Incr(ctx, resource+":overlaps")
						}
						p.Set(ctx, resource+":counter", n+1, time.Hour)
						p.Decr(ctx, resource+":inside")
						return nil
					})
					return err
				})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stackLocker returns a locker on the stack's Redlock masters or etcd.
func stackLocker(backend string) (Locker, func(), error) {
	switch backend {
	case "redlock":
		var clients []redis.UniversalClient
		for _, a := range stack.RedlockAddrs() {
			clients = append(clients, redis.NewClient(&redis.Options{
				Addr: a, PoolSize: 64, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true,
				DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
			}))
		}
		// Redlock waiters poll, and each try is a SET NX and a release on
		// every master: a dozen waiters retrying every 1–5 ms spent more CPU
		// than a loaded 2-core machine had (with -race about 1 ms a try),
		// starving the holder; at 5–25 ms they still find the lock free
		// within a millisecond or two of its release.
		l, err := NewRedlock(clients, RedlockConfig{Prefix: "part06:test:", Tries: 1 << 30,
			RetryDelay: func(int) time.Duration { return 5*time.Millisecond + rand.N(20*time.Millisecond) }})
		return l, func() {
			for _, c := range clients {
				_ = c.Close()
			}
		}, err
	case "etcd":
		c, err := stackEtcdClient()
		if err != nil {
			return nil, nil, err
		}
		l, err := NewEtcd(c, EtcdConfig{Prefix: "/part06/test/locks/"})
		if err != nil {
			_ = c.Close()
			return nil, nil, err
		}
		return l, func() { _ = l.Close(); _ = c.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown backend %q", backend)
}

func stackEtcdClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: stack.EtcdEndpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
}

// stackFence opens the fencing store on the stack's PostgreSQL.
func stackFence(ctx context.Context) (*pgxpool.Pool, *fencing.Postgres, error) {
	pool, err := pgxpool.New(ctx, stack.DatabaseURL())
	if err != nil {
		return nil, nil, err
	}
	if err := fencing.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, fencing.NewPostgres(pool), nil
}
