// Package campaign is the article's PayPay case: ¥500 to the first N users of
// a flash campaign, with many pods claiming at once. The prize count lives in
// Redis; a claim must never award more than N prizes, nor two to one user.
//
// Three ways to claim, measured side by side by Run:
//
//   - ClaimNoLock reads the count, checks it and writes it back in two
//     round trips: the article's race ("two pods both read count=9,999").
//   - ClaimWithLock does the same under one global lock, as the article does
//     (Redlock on "campaign:<name>"), and every claim in the country queues
//     behind it. Both steps carry the lock's fencing token, which Redis checks
//     against the highest it has seen, so a holder that paused past its TTL
//     cannot write what it read before its successor read.
//   - ClaimAtomic does the check and the decrement in one Lua script: Redis
//     runs scripts one at a time, so it needs no lock and never waits for one.
package campaign

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part06-locks/lock"
)

// Result is what a claim did.
type Result int

// The outcomes of a claim.
const (
	Won        Result = iota + 1 // this user got a prize
	SoldOut                      // no prize was left
	AlreadyWon                   // this user had one already
)

// String names the outcome for tables and logs.
func (r Result) String() string {
	switch r {
	case Won:
		return "won"
	case SoldOut:
		return "sold out"
	case AlreadyWon:
		return "already won"
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// Campaign is one campaign's state in Redis: "{Name}:left" (prizes left),
// "{Name}:winners" (a set of user IDs) and "{Name}:fence" (the highest
// fencing token a locked claim has shown). The braces are a Redis Cluster
// hash tag: the keys hash to one slot, so the MULTI in Open and ClaimNoLock
// and the scripts, which touch several, also run on a cluster (without it
// they fail with CROSSSLOT).
type Campaign struct {
	rdb  redis.Cmdable
	name string

	afterRead  func() // tests: runs between ClaimNoLock's read and its write
	afterWrite func() // tests: runs after a locked claim's write landed
}

// New returns the campaign called name (the article's key is
// "campaign:lucky-campaign-2024"); name must be a valid lock resource, since
// ClaimWithLock locks it.
func New(rdb redis.Cmdable, name string) (*Campaign, error) {
	if err := lock.ValidateResource(name); err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	return &Campaign{rdb: rdb, name: name}, nil
}

// Name is the campaign's key prefix and lock resource.
func (c *Campaign) Name() string { return c.name }

func (c *Campaign) left() string    { return "{" + c.name + "}:left" }
func (c *Campaign) winners() string { return "{" + c.name + "}:winners" }
func (c *Campaign) fence() string   { return "{" + c.name + "}:fence" }

// Open starts the campaign with prizes prizes and no winners.
func (c *Campaign) Open(ctx context.Context, prizes int) error {
	if prizes < 0 {
		return fmt.Errorf("campaign: %d prizes", prizes)
	}
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, c.left(), prizes, 0)
		p.Del(ctx, c.winners(), c.fence())
		return nil
	})
	return err
}

// ClaimNoLock reads (prizes left, has this user won) in one round trip,
// decides, and writes (the user as a winner, left − 1) in a second, as one
// MULTI/EXEC: nothing stops another claimer between the two round trips.
func (c *Campaign) ClaimNoLock(ctx context.Context, user string) (Result, error) {
	var get *redis.StringCmd
	var won *redis.BoolCmd
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, c.left())
		won = p.SIsMember(ctx, c.winners(), user)
		return nil
	}); err != nil {
		return 0, err
	}
	left, err := get.Int64()
	if err != nil {
		return 0, err
	}
	if c.afterRead != nil {
		c.afterRead()
	}
	switch {
	case won.Val():
		return AlreadyWon, nil
	case left <= 0:
		return SoldOut, nil
	}
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, c.winners(), user)
		p.Set(ctx, c.left(), left-1, 0)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return Won, nil
}

// ClaimWithLock runs ClaimNoLock's steps under the campaign's lock, each
// with the lock's fencing token: the read raises the campaign's fence to the
// token and the write is refused (ErrStale) if a later holder has read
// since. The lock alone cannot stop a holder that paused past its TTL from
// writing the count it read before its successor did: two prizes for one.
// Use one Locker per campaign (tokens of different lockers are not
// comparable).
//
// A claim that got through its steps returns their result even if the
// lock's validity ended before ExecuteWithLock returned (a slow holder on a
// loaded machine), with the error wrapping lock.ErrLockLost: the fence
// proves no later holder read in between, so a Won's prize stands.
func (c *Campaign) ClaimWithLock(ctx context.Context, l lock.Locker, ttl time.Duration, user string) (Result, error) {
	var res Result
	err := l.ExecuteWithLock(ctx, c.name, ttl, func(ctx context.Context, token int64) error {
		var err error
		res, err = c.claimFenced(ctx, token, user)
		return err
	})
	return res, err
}

// ErrStale is the error of a locked claim whose token is lower than one the
// campaign has seen: its lock lapsed and a later holder read the count.
// Nothing was written.
var ErrStale = errors.New("campaign: stale fencing token: a later lock holder has read the count")

// fencedRead: KEYS left, winners, fence; ARGV token, user. Raises the fence
// to token (or refuses a lower token) and returns {left, is member}.
var fencedRead = redis.NewScript(`
local fence = tonumber(redis.call("GET", KEYS[3]) or "0")
local token = tonumber(ARGV[1])
if token < fence then return redis.error_reply("STALE token " .. ARGV[1] .. " is below " .. fence) end
if token > fence then redis.call("SET", KEYS[3], ARGV[1]) end
return {tonumber(redis.call("GET", KEYS[1]) or "0"), redis.call("SISMEMBER", KEYS[2], ARGV[2])}`)

// fencedWrite: KEYS left, winners, fence; ARGV token, user, new left. The
// write of ClaimNoLock, refused for a token below the fence.
var fencedWrite = redis.NewScript(`
if tonumber(ARGV[1]) < tonumber(redis.call("GET", KEYS[3]) or "0") then
	return redis.error_reply("STALE token " .. ARGV[1])
end
redis.call("SADD", KEYS[2], ARGV[2])
redis.call("SET", KEYS[1], ARGV[3])
return 1`)

// claimFenced is ClaimNoLock with the token on both round trips.
func (c *Campaign) claimFenced(ctx context.Context, token int64, user string) (Result, error) {
	keys := []string{c.left(), c.winners(), c.fence()}
	read, err := fencedRead.Run(ctx, c.rdb, keys, token, user).Int64Slice()
	if err != nil {
		return 0, stale(err)
	}
	if c.afterRead != nil {
		c.afterRead()
	}
	switch left, won := read[0], read[1] == 1; {
	case won:
		return AlreadyWon, nil
	case left <= 0:
		return SoldOut, nil
	default:
		if err := fencedWrite.Run(ctx, c.rdb, keys, token, user, left-1).Err(); err != nil {
			return 0, stale(err)
		}
		if c.afterWrite != nil {
			c.afterWrite()
		}
	}
	return Won, nil
}

// stale turns the scripts' STALE reply into ErrStale.
func stale(err error) error {
	if strings.HasPrefix(err.Error(), "STALE ") {
		return fmt.Errorf("%w (%s)", ErrStale, err)
	}
	return err
}

// claimScript is the claim in one step: Redis runs a script to completion
// before any other command.
var claimScript = redis.NewScript(`
if redis.call("SISMEMBER", KEYS[2], ARGV[1]) == 1 then return 3 end
local left = tonumber(redis.call("GET", KEYS[1]) or "0")
if left <= 0 then return 2 end
redis.call("DECR", KEYS[1])
redis.call("SADD", KEYS[2], ARGV[1])
return 1`)

// ClaimAtomic claims with one Lua script: no lock, one round trip.
func (c *Campaign) ClaimAtomic(ctx context.Context, user string) (Result, error) {
	n, err := claimScript.Run(ctx, c.rdb, []string{c.left(), c.winners()}, user).Int()
	if err != nil {
		return 0, err
	}
	return Result(n), nil
}

// Tally is the campaign's state: prizes left and winners.
func (c *Campaign) Tally(ctx context.Context) (left, winners int64, err error) {
	if left, err = c.rdb.Get(ctx, c.left()).Int64(); err != nil {
		return 0, 0, err
	}
	winners, err = c.rdb.SCard(ctx, c.winners()).Result()
	return left, winners, err
}

// Close deletes the campaign's keys.
func (c *Campaign) Close(ctx context.Context) error {
	return c.rdb.Del(ctx, c.left(), c.winners(), c.fence()).Err()
}

// Stats is one Run.
type Stats struct {
	Won, SoldOut, AlreadyWon, Failed int
	FirstError                       error
	Elapsed                          time.Duration // until every claimer stopped
	// SoldOutAfter is when the first claimer was told "sold out" (if SoldOut
	// is not 0): the time the campaign took to give its prizes away.
	SoldOutAfter time.Duration
	TimedOut     bool // the budget (or ctx) ended the run before it sold out or every user had claimed
}

// Throughput is prizes awarded per second until the campaign sold out (or
// until the run ended, if it did not).
func (s Stats) Throughput() float64 {
	d := s.Elapsed
	if s.SoldOut > 0 {
		d = s.SoldOutAfter
	}
	if d <= 0 {
		return 0
	}
	return float64(s.Won) / d.Seconds()
}

// Run has claimers goroutines claim for users user-0 … user-(users-1), each
// user once, until a claimer is told "sold out", every user has claimed, or
// budget has passed; claims in flight when the budget ends still finish, so
// every claim is counted once. A claim that returns a Result counts as that
// result, with or without an error (ClaimWithLock when the lock lapsed after
// the claim's steps); one that returns only an error (e.g. the lock was not
// acquired) counts in Failed. A failed claim's write may still have landed
// (a timeout after Redis ran it), so Tally is the count; Won is a lower
// bound.
func Run(ctx context.Context, claimers, users int, budget time.Duration, claim func(ctx context.Context, user string) (Result, error)) Stats {
	var (
		next    atomic.Int64
		stop    atomic.Bool // sold out or out of time: claimers finish the claim in hand
		mu      sync.Mutex
		s       Stats
		soldOut time.Duration
		sold    bool
		wg      sync.WaitGroup
	)
	start := time.Now()
	deadline := time.AfterFunc(budget, func() { stop.Store(true) })
	defer deadline.Stop()
	for range claimers {
		wg.Go(func() {
			for ctx.Err() == nil && !stop.Load() {
				i := next.Add(1) - 1
				if i >= int64(users) {
					return
				}
				res, err := claim(ctx, "user-"+strconv.FormatInt(i, 10))
				mu.Lock()
				switch res {
				case Won:
					s.Won++
				case SoldOut:
					stop.Store(true)
					s.SoldOut++
					if !sold {
						sold, soldOut = true, time.Since(start)
					}
				case AlreadyWon:
					s.AlreadyWon++
				default:
					s.Failed++
					if s.FirstError == nil {
						s.FirstError = err
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.Elapsed, s.SoldOutAfter = time.Since(start), soldOut
	s.TimedOut = !sold && next.Load() < int64(users)
	return s
}
