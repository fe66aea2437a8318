package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sysdesign-masterclass/golang/part06-locks/campaign"
	"github.com/sysdesign-masterclass/golang/part06-locks/lock"
)

// articleTTL is the PayPay lock's TTL in the article.
const articleTTL = 500 * time.Millisecond

// campaignDemo runs the PayPay campaign once per strategy: o.claimers
// claimers, 20% more users than prizes (so it sells out), each lock-based run
// stopped after o.budget. The Tally read back from Redis is the count; the
// lock and the script must award exactly o.prizes or fewer (if the budget ran
// out), never more.
func campaignDemo(ctx context.Context, w io.Writer, o options) error {
	users := o.prizes + max(o.prizes/5, 1)
	fmt.Fprintf(w, "== PayPay: ¥500 to the first %s of %s users, %d concurrent claimers; lock-based runs stop after %v ==\n",
		thousands(o.prizes), thousands(users), o.claimers, o.budget)
	article, err := lock.NewRedlock(o.env.Masters, lock.RedlockConfig{Prefix: o.env.Prefix, Tries: 5, RetryDelay: func(int) time.Duration { return 100 * time.Millisecond }})
	if err != nil {
		return err
	}
	defaults, err := lock.NewRedlock(o.env.Masters, lock.RedlockConfig{Prefix: o.env.Prefix})
	if err != nil {
		return err
	}
	tuned, err := lock.NewRedlock(o.env.Masters, lock.RedlockConfig{Prefix: o.env.Prefix, Tries: 1 << 30, RetryDelay: fastRetry})
	if err != nil {
		return err
	}
	etcd, err := lock.NewEtcd(o.env.Etcd, lock.EtcdConfig{Prefix: o.env.EtcdPrefix()})
	if err != nil {
		return err
	}
	defer etcd.Close()
	strategies := []struct {
		name   string
		locked bool
		claim  func(c *campaign.Campaign) func(context.Context, string) (campaign.Result, error)
	}{
		{"no lock: read, check, write (two round trips)", false, func(c *campaign.Campaign) func(context.Context, string) (campaign.Result, error) {
			return c.ClaimNoLock
		}},
		{"Redlock, the article's options (TTL 500 ms, 5 tries 100 ms apart)", true, withLock(bounded{article}, articleTTL)},
		{"Redlock, TTL 500 ms, redsync's retries (32, 50–250 ms apart)", true, withLock(bounded{defaults}, articleTTL)},
		{"Redlock, TTL 500 ms, retry every 1–5 ms (the claimers flood the masters)", true, withLock(bounded{tuned}, articleTTL)},
		{"etcd lock, TTL 1 s (500 ms is under etcd's 1 s)", true, withLock(bounded{etcd}, time.Second)},
		{"one Lua script, no lock", false, func(c *campaign.Campaign) func(context.Context, string) (campaign.Result, error) {
			return c.ClaimAtomic
		}},
	}
	tw := table(w)
	fmt.Fprintln(tw, "strategy\tprizes/s\tawarded\tover-awarded\tclaims failed\tsold out after")
	for i, s := range strategies {
		c, err := campaign.New(o.env.Redis, fmt.Sprintf("%scampaign:lucky-campaign-2024:%d", o.env.Prefix, i))
		if err != nil {
			return err
		}
		if err := c.Open(ctx, o.prizes); err != nil {
			return err
		}
		budget := time.Hour // the lock-free runs finish on their own
		if s.locked {
			budget = o.budget
		}
		st := campaign.Run(ctx, o.claimers, users, budget, s.claim(c))
		left, winners, err := c.Tally(ctx)
		if err != nil {
			return err
		}
		_ = c.Close(context.WithoutCancel(ctx))
		if err := ctx.Err(); err != nil {
			return err
		}
		// Redis's tally is the count. A claim that failed may still have
		// landed (a timeout after Redis ran its write), so the claims won
		// are a lower bound and the failed ones the most it can be off by.
		if s.name != strategies[0].name && (winners > int64(o.prizes) || left+winners != int64(o.prizes) ||
			winners < int64(st.Won) || winners > int64(st.Won+st.Failed)) {
			return fmt.Errorf("%s: %d winners in Redis, %d prizes left, %d claims won, %d failed, %d prizes: the count is off",
				s.name, winners, left, st.Won, st.Failed, o.prizes)
		}
		var soldOut string
		switch {
		case st.SoldOut > 0:
			soldOut = ms(st.SoldOutAfter)
		case st.TimedOut:
			soldOut = fmt.Sprintf("not in %v: all %s would take %s", budget, thousands(o.prizes), human(time.Duration(float64(o.prizes)/st.Throughput()*float64(time.Second))))
		default:
			soldOut = fmt.Sprintf("never: all %s users won, in %s", thousands(users), ms(st.Elapsed))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s of %s\t%s\t%s\t%s\n", s.name, st.Throughput(), thousands(winners), thousands(o.prizes),
			thousands(max(winners-int64(o.prizes), 0)), thousands(st.Failed), soldOut)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "the article: \"Write throughput capped at ~2 operations/second\" would give away %s prizes in %s; a lock caps throughput at one holder at a time, 1 / (lock + claim + unlock)\n",
		thousands(o.prizes), human(time.Duration(o.prizes/2)*time.Second))
	fmt.Fprintln(w, "the locked claims show the lock's fencing token on their read and their write, so a holder that paused past the TTL cannot over-award; the script needs no lock: Redis runs it alone")
	return nil
}

func withLock(l lock.Locker, ttl time.Duration) func(c *campaign.Campaign) func(context.Context, string) (campaign.Result, error) {
	return func(c *campaign.Campaign) func(context.Context, string) (campaign.Result, error) {
		return func(ctx context.Context, user string) (campaign.Result, error) {
			return c.ClaimWithLock(ctx, l, ttl, user)
		}
	}
}
