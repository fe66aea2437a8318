package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/go-redsync/redsync/v4"
	rsredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/sysdesign-masterclass/golang/part06-locks/internal/services"
	"github.com/sysdesign-masterclass/golang/part06-locks/lock"
)

func validityDemo(ctx context.Context, w io.Writer, o options) error {
	if err := minValidity(ctx, w, o.env); err != nil {
		return err
	}
	if err := redsyncSettings(ctx, w, o.env); err != nil {
		return err
	}
	return etcdTTLs(ctx, w, o.env)
}

// minValidity prints the article's example beside redsync's formula, and a
// real redsync lock's Until() beside the formula with its measured
// acquisition time.
func minValidity(ctx context.Context, w io.Writer, env *services.Env) error {
	fmt.Fprintln(w, "== Redlock validity: MIN_VALIDITY = TTL − (acquisition + clock drift + drift safety factor) ==")
	const ttl = 10 * time.Second
	var pools []rsredis.Pool
	for _, c := range env.Masters {
		pools = append(pools, goredis.NewPool(c))
	}
	m := redsync.New(pools...).NewMutex(env.Prefix+"lock:validity", redsync.WithExpiry(ttl))
	start := time.Now()
	if err := m.LockContext(ctx); err != nil {
		return err
	}
	end := time.Now()
	left := time.Until(m.Until())
	if _, err := m.UnlockContext(ctx); err != nil {
		return err
	}
	drift := lock.Drift(ttl, lock.RedsyncDriftFactor)
	tw := table(w)
	fmt.Fprintln(tw, "case\tTTL\tacquisition\tdrift + safety\tvalidity")
	fmt.Fprintf(tw, "the article's example\t%s\t%s (3 nodes × 40 ms)\t%s + %s\t%s\n", ms(ttl), ms(120*time.Millisecond), ms(50*time.Millisecond), ms(100*time.Millisecond),
		ms(lock.MinValidity(ttl, 120*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond)))
	fmt.Fprintf(tw, "redsync, 3 masters at 40 ms each\t%s\t%s (asked at once)\t%s (TTL × 0.01)\t%s\n", ms(ttl), ms(40*time.Millisecond), ms(drift),
		ms(lock.Validity(ttl, 40*time.Millisecond, lock.RedsyncDriftFactor)))
	fmt.Fprintf(tw, "redsync on this run's masters\t%s\t%s (measured)\t%s\t%s by the formula; Until() − now = %s\n", ms(ttl), ms(end.Sub(start)), ms(drift),
		ms(lock.Validity(ttl, end.Sub(start), lock.RedsyncDriftFactor)), ms(left))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "clock drift at 1–2 ms/s accrues over the TTL: %s–%s for a 10 s lock, %s for a 500 ms one; \"~200ms\" takes a %s–%s TTL, whatever the cluster's size\n",
		ms(lock.ClockDrift(ttl, 0.001)), ms(lock.ClockDrift(ttl, 0.002)), ms(lock.ClockDrift(500*time.Millisecond, 0.002)), secs(100*time.Second), secs(200*time.Second))
	fmt.Fprintln(w)
	return nil
}

// redsyncSettings times how long a caller that finds the lock held waits
// before it gives up, with the article's options and with redsync's defaults.
func redsyncSettings(ctx context.Context, w io.Writer, env *services.Env) error {
	fmt.Fprintln(w, "== redsync: the article's options against the defaults of the release in go.mod (v4.18.1) ==")
	var pools []rsredis.Pool
	for _, c := range env.Masters {
		pools = append(pools, goredis.NewPool(c))
	}
	rs := redsync.New(pools...)
	key := env.Prefix + "lock:held"
	holder := rs.NewMutex(key, redsync.WithExpiry(time.Minute))
	if err := holder.LockContext(ctx); err != nil {
		return err
	}
	defer func() { _, _ = holder.UnlockContext(context.WithoutCancel(ctx)) }()
	type outcome struct {
		took time.Duration
		err  error
	}
	cases := []struct {
		name, expiry, tries, delay string
		opts                       []redsync.Option
	}{
		{"the article's options", "the lock's TTL", "5", "100 ms", []redsync.Option{redsync.WithTries(5), redsync.WithRetryDelay(100 * time.Millisecond)}},
		{"redsync's defaults", secs(lock.RedsyncExpiry), fmt.Sprint(lock.RedsyncTries), fmt.Sprintf("random %s–%s", ms(lock.RedsyncRetryDelayMin), ms(lock.RedsyncRetryDelayMax)), nil},
	}
	outcomes := make([]outcome, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() {
			start := time.Now()
			err := rs.NewMutex(key, c.opts...).LockContext(ctx)
			outcomes[i] = outcome{time.Since(start), err}
		})
	}
	wg.Wait()
	tw := table(w)
	fmt.Fprintln(tw, "settings\texpiry\ttries\tretry delay\ta caller that finds the lock held gives up after")
	for i, c := range cases {
		var taken *redsync.ErrTaken
		if o := outcomes[i]; errors.As(o.err, &taken) || errors.Is(o.err, redsync.ErrFailed) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (measured)\n", c.name, c.expiry, c.tries, c.delay, ms(o.took))
		} else {
			return fmt.Errorf("%s: want the lock held by another, got %v", c.name, o.err)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "both: drift factor %.2f (validity = expiry − elapsed − expiry × %.2f), each try may take expiry × %.2f, quorum N/2+1 = %d of %d\n",
		lock.RedsyncDriftFactor, lock.RedsyncDriftFactor, lock.RedsyncTimeoutFactor, lock.Quorum(len(env.Masters)), len(env.Masters))
	fmt.Fprintln(w)
	return nil
}

// etcdTTLs grants sessions the way the article does, int(ttl.Seconds()), and
// asks the server what it granted; beside it, what this package does.
func etcdTTLs(ctx context.Context, w io.Writer, env *services.Env) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	fmt.Fprintln(w, "== etcd leases are whole seconds: the article's WithTTL(int(ttl.Seconds())) against lock.LeaseSeconds ==")
	tw := table(w)
	fmt.Fprintln(tw, "ttl asked\tthe article passes\tthe server grants\tthis package")
	for _, ttl := range []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2500 * time.Millisecond} {
		s, err := concurrency.NewSession(env.Etcd, concurrency.WithTTL(int(ttl.Seconds())), concurrency.WithContext(ctx))
		if err != nil {
			return err
		}
		resp, err := env.Etcd.TimeToLive(ctx, s.Lease())
		_ = s.Close()
		if err != nil {
			return err
		}
		ours := "rejected: under 1 s"
		if n, err := lock.LeaseSeconds(ttl); err == nil {
			g, err := env.Etcd.Grant(ctx, n)
			if err != nil {
				return err
			}
			_, _ = env.Etcd.Revoke(ctx, g.ID)
			ours = fmt.Sprintf("%d s, granted %d s", n, g.TTL)
		}
		passes := fmt.Sprintf("WithTTL(%d)", int(ttl.Seconds()))
		if int(ttl.Seconds()) == 0 {
			passes += ": keeps the 60 s default"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d s\t%s\n", ms(ttl), passes, resp.GrantedTTL, ours)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "the server raises any lease under its minimum (1.5 × the election timeout, rounded up) to it; the lock runs on the granted TTL")
	return nil
}
