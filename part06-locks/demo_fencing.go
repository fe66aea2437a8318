package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part06-locks/fencing"
	"github.com/sysdesign-masterclass/golang/part06-locks/internal/services"
	"github.com/sysdesign-masterclass/golang/part06-locks/lock"
)

// fencingTTL is the lock TTL of the split-brain scenario: etcd's minimum.
const fencingTTL = 2 * time.Second

// fencingDemo plays Kleppmann's split brain on each backend. Holder A takes
// the lock and its token, decides its write, and freezes: its connections
// stall (from the servers' side a GC pause, SIGSTOP or a partition look the
// same) and its goroutine waits. The lock expires on the servers, B takes it
// with a higher token and writes. Then A wakes and sends its write, as a
// paused process would, without looking at its lock again: the store refuses
// it. An unfenced store, fed the same two writes, keeps A's.
func fencingDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== Split brain: A is cut off past its %v TTL, B takes the lock, A's late write meets the fencing token ==\n", fencingTTL)
	store := "in-memory fencing store"
	if o.env.RealPostgres {
		store = "PostgreSQL row, conditional UPDATE"
	}
	for _, backend := range []string{"redlock", "etcd"} {
		gate := services.NewGate()
		var a, b lock.Locker
		var closeA func()
		switch backend {
		case "etcd":
			cut, err := o.env.EtcdClient(gate)
			if err != nil {
				return err
			}
			ea, err := lock.NewEtcd(cut, lock.EtcdConfig{Prefix: o.env.EtcdPrefix()})
			if err != nil {
				return err
			}
			eb, err := lock.NewEtcd(o.env.Etcd, lock.EtcdConfig{Prefix: o.env.EtcdPrefix()})
			if err != nil {
				return err
			}
			a, b = ea, eb
			closeA = func() { _ = ea.Close(); _ = eb.Close(); _ = cut.Close() }
		default:
			masters := o.env.GatedMasters(gate)
			closeA = func() {
				for _, m := range masters {
					_ = m.Close()
				}
			}
			var err error
			if a, err = lock.NewRedlock(masters, lock.RedlockConfig{Prefix: o.env.Prefix}); err != nil {
				return err
			}
			if b, err = lock.NewRedlock(o.env.Masters, lock.RedlockConfig{Prefix: o.env.Prefix, Tries: 1_000_000, RetryDelay: fastRetry}); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "-- %s; writes go to a %s --\n", map[string]string{"redlock": "Redlock, 3 masters", "etcd": "etcd"}[backend], store)
		err := splitBrain(ctx, w, o.env, gate, bounded{a}, bounded{b}, o.env.Resource("account:"+backend))
		gate.Thaw()
		closeA()
		if err != nil {
			return fmt.Errorf("%s: %w", backend, err)
		}
	}
	fmt.Fprintln(w, "the lock alone cannot stop A: it does not know it paused. The token makes the store the judge (article: \"use these as fencing tokens\", no code given)")
	return nil
}

func splitBrain(ctx context.Context, w io.Writer, env *services.Env, gate *services.Gate, a, b lock.Locker, resource string) error {
	var (
		mu     sync.Mutex
		events []event
		start  = time.Now()
	)
	log := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, event{time.Since(start), fmt.Sprintf(format, args...)})
	}
	acquired, wake, aDone := make(chan int64, 1), make(chan struct{}), make(chan error, 1)
	var aWrite error
	go func() {
		aDone <- a.ExecuteWithLock(ctx, resource, fencingTTL, func(lctx context.Context, token int64) error {
			acquired <- token
			stop := context.AfterFunc(lctx, func() {
				log("A's lock context is cancelled (%v); a really paused A would only see it on waking", context.Cause(lctx))
			})
			defer stop()
			select { // A is paused: it runs again only when the demo wakes it
			case <-wake:
			case <-ctx.Done():
				return ctx.Err()
			}
			// A's write was decided before the pause; it goes out as it is.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
			defer cancel()
			aWrite = env.Fence.Write(wctx, resource, token, fmt.Sprintf("A's value (token %d)", token))
			log("A wakes and sends its write with token %d: %s", token, verdict(aWrite))
			return aWrite
		})
	}()
	var tokenA int64
	select {
	case tokenA = <-acquired:
	case err := <-aDone:
		return fmt.Errorf("holder A: %w", err)
	}
	gate.Freeze()
	log("A holds the lock with token %d, decides its write, and freezes: its connections stall and it runs no code", tokenA)

	var tokenB int64
	bErr := b.ExecuteWithLock(ctx, resource, fencingTTL, func(lctx context.Context, token int64) error {
		tokenB = token
		log("B acquires the lock with token %d", token)
		err := env.Fence.Write(lctx, resource, token, fmt.Sprintf("B's value (token %d)", token))
		log("B writes with token %d: %s", token, verdict(err))
		return err
	})
	if bErr != nil {
		return fmt.Errorf("holder B: %w", bErr)
	}
	close(wake)
	aErr := <-aDone
	log("A's ExecuteWithLock returns: %s", oneLine(aErr))
	if !errors.Is(aWrite, fencing.ErrStale) {
		return fmt.Errorf("holder A's stale write was not refused: %v", aWrite)
	}
	if !errors.Is(aErr, lock.ErrLockLost) {
		return fmt.Errorf("holder A's ExecuteWithLock did not report the loss: %v", aErr)
	}
	rec, _, err := env.Fence.Read(ctx, resource)
	if err != nil {
		return err
	}
	unfenced := map[string]string{} // the same writes, in the same order, to a store without tokens
	unfenced[resource] = fmt.Sprintf("B's value (token %d)", tokenB)
	unfenced[resource] = fmt.Sprintf("A's value (token %d)", tokenA)

	mu.Lock()
	defer mu.Unlock()
	slices.SortStableFunc(events, func(x, y event) int { return cmp.Compare(x.at, y.at) })
	tw := table(w)
	fmt.Fprintln(tw, "t\tevent")
	for _, e := range events {
		fmt.Fprintf(tw, "%s ms\t%s\n", thousands(e.at.Milliseconds()), e.text)
	}
	fmt.Fprintf(tw, "result\tthe store holds %q; without the token check it would hold %q\n", rec.Value, unfenced[resource])
	return tw.Flush()
}

// event is one line of the split-brain timeline.
type event struct {
	at   time.Duration
	text string
}

func verdict(err error) string {
	if err == nil {
		return "accepted"
	}
	return "REJECTED: " + err.Error()
}
