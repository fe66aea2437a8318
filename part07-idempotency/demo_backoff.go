package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/retry"
)

// The article's example schedule.
const (
	backoffBase   = 100 * time.Millisecond
	backoffMax    = 2 * time.Second
	backoffJitter = 100 * time.Millisecond
	backoffFleet  = 1000
)

// articleDelay is the article's formula, T = min(Tmax, Tb·2^n + U(0, J)),
// computed here to compare with full jitter.
func articleDelay(n int) time.Duration {
	d := backoffBase<<n + time.Duration(rand.Int64N(int64(backoffJitter)))
	return min(d, backoffMax)
}

// backoffDemo draws the delay before each retry for a fleet of clients that
// all failed at the same instant, under both schedules.
func backoffDemo(_ context.Context, w io.Writer, _ options) error {
	fmt.Fprintf(w, "== Backoff: %s clients fail at once; the delay before retry n (Tb = %v, Tmax = %v, J = %v) ==\n", "1,000", backoffBase, backoffMax, backoffJitter)
	full := retry.Backoff{Base: backoffBase, Max: backoffMax}
	tw := table(w)
	fmt.Fprintln(tw, "retry n\tarticle: min(Tmax, Tb·2^n + U(0,J))\tdistinct\tat exactly Tmax\tfull jitter: U(0, min(Tmax, Tb·2^n))\tdistinct")
	for n := range 8 {
		a := sample(func() time.Duration { return articleDelay(n) })
		f := sample(func() time.Duration { return full.Delay(n) })
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%d\n", n, a.span(), a.distinct, a.atMax, f.span(), f.distinct)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	overflow := 0
	for float64(backoffBase)*math.Pow(2, float64(overflow)) <= math.MaxInt64 {
		overflow++
	}
	fmt.Fprintf(w, "once Tb·2^n passes Tmax the article's clients all wait exactly Tmax and retry in step; full jitter keeps them spread.\n")
	fmt.Fprintf(w, "the article's code also: panics in rand.Int63n(0) when J = 0; at n = %d, Tb·2^n = %.3g ns no longer fits an int64 and\n", overflow, float64(backoffBase)*math.Pow(2, float64(overflow)))
	fmt.Fprintf(w, "the delay comes out negative (no wait at all). retry.Backoff.Cap(%d) = %v; Delay(n) ≤ Cap(n) for every n.\n\n", overflow, full.Cap(overflow))
	return nil
}

type spread struct {
	lo, hi          time.Duration
	distinct, atMax int
}

func sample(draw func() time.Duration) spread {
	seen := map[time.Duration]bool{}
	s := spread{lo: math.MaxInt64}
	for range backoffFleet {
		d := draw()
		seen[d] = true
		s.lo, s.hi = min(s.lo, d), max(s.hi, d)
		if d == backoffMax {
			s.atMax++
		}
	}
	s.distinct = len(seen)
	return s
}

func (s spread) span() string { return ms(s.lo) + " .. " + ms(s.hi) }
