package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part06-locks/lock"
)

// raceDemo replays the article's sequence diagram on a Redis key: two
// servers read the balance, then write balance − amount. Without a lock the
// demo plays the diagram's interleaving (both read 1000, then S1 writes, then
// S2); with the Redlock each read-and-write runs alone, in either order.
func raceDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintln(w, "== The race the lock prevents: S1 withdraws 500 and S2 withdraws 300 from balance 1000 ==")
	l, err := lock.NewRedlock(o.env.Masters, lock.RedlockConfig{Prefix: o.env.Prefix, RetryDelay: fastRetry})
	if err != nil {
		return err
	}
	key := o.env.Prefix + "balance"
	tw := table(w)
	fmt.Fprintln(tw, "\tS1 read\tS1 wrote\tS2 read\tS2 wrote\tfinal balance\tcorrect\tlost")
	for _, locked := range []bool{false, true} {
		if err := o.env.Redis.Set(ctx, key, 1000, time.Minute).Err(); err != nil {
			return err
		}
		var bothRead sync.WaitGroup
		bothRead.Add(2)
		s1Wrote := make(chan struct{})
		type step struct{ read, wrote int64 }
		steps := make([]step, 2)
		withdraw := func(i int, amount int64) error {
			v, err := o.env.Redis.Get(ctx, key).Int64()
			if err != nil {
				return err
			}
			if !locked {
				bothRead.Done()
				bothRead.Wait() // the diagram: both read before either writes,
				if i == 1 {     // and S1 writes first
					<-s1Wrote
				}
			}
			steps[i] = step{v, v - amount}
			err = o.env.Redis.Set(ctx, key, v-amount, time.Minute).Err()
			if !locked && i == 0 {
				close(s1Wrote)
			}
			return err
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, amount := range []int64{500, 300} {
			wg.Go(func() {
				if !locked {
					errs[i] = withdraw(i, amount)
					return
				}
				errs[i] = bounded{l}.ExecuteWithLock(ctx, "account", 10*time.Second, func(ctx context.Context, _ int64) error {
					return withdraw(i, amount)
				})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		final, err := o.env.Redis.Get(ctx, key).Int64()
		if err != nil {
			return err
		}
		name := "no lock"
		if locked {
			name = "Redlock"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", name, steps[0].read, steps[0].wrote, steps[1].read, steps[1].wrote, final, 1000-500-300, final-200)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "without the lock the second write overwrites the first: the article's \"final balance=700, lost $500\"")
	return o.env.Redis.Del(ctx, key).Err()
}

// fastRetry is the retry pause of the demo's contended Redlocks: a random
// 1–5 ms instead of redsync's 50–250 ms, so a released lock is not left idle
// while every waiter sleeps.
func fastRetry(int) time.Duration { return time.Millisecond + rand.N(4*time.Millisecond) }
