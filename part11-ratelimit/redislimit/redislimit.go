// Package redislimit holds distributed rate limiters: one Lua script per
// check, so every application server shares one quota per key and a check
// is a single round trip (EVALSHA; the script text travels only when a
// Redis node has not seen it yet).
//
// Algorithms, all behind quota.Limiter:
//
//   - SlidingLog: the article's sorted set of request timestamps. Exact (never
//     more than Limit in any Window) but O(Limit) memory per key.
//   - SlidingCounter: two counters weighted by the window's overlap. O(1)
//     memory, approximate: it assumes the previous window's requests were
//     evenly spread, so a client that bursts at the end of two consecutive
//     windows gets up to about twice the limit into one sliding window.
//   - GCRA: one timestamp per key (what go-redis/redis_rate does). A token
//     bucket: Burst at once, then one per Window/Limit.
//   - FixedWindow: one counter per window; the baseline, with its 2× burst
//     across a window edge.
//
// What this fixes in the article's script: the clock is Redis's TIME, read
// inside the script, not each application server's (a server whose clock is
// 1 s behind let 14 requests through a 10-per-minute limit); Retry-After is
// when the oldest logged request leaves the window, not always the full
// window; keys carry a hash tag around the client id, so on Redis Cluster
// every key of one client lands in one slot (multi-key scripts stay legal)
// while different clients spread over all slots.
package redislimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// Algorithm selects the script.
type Algorithm int

// The algorithms, in the order the chapter discusses them.
const (
	SlidingLog Algorithm = iota + 1
	SlidingCounter
	GCRA
	FixedWindow
)

// Algorithms lists every algorithm.
var Algorithms = []Algorithm{SlidingLog, SlidingCounter, GCRA, FixedWindow}

var algoNames = map[Algorithm]string{SlidingLog: "log", SlidingCounter: "counter", GCRA: "gcra", FixedWindow: "fixed"}

func (a Algorithm) String() string {
	if s, ok := algoNames[a]; ok {
		return s
	}
	return "Algorithm(" + strconv.Itoa(int(a)) + ")"
}

// ParseAlgorithm reads "log", "counter", "gcra" or "fixed".
func ParseAlgorithm(s string) (Algorithm, error) {
	for a, name := range algoNames {
		if s == name {
			return a, nil
		}
	}
	return 0, fmt.Errorf("redislimit: unknown algorithm %q; want log | counter | gcra | fixed", s)
}

// Client is what a Limiter needs of go-redis: *redis.Client,
// *redis.ClusterClient and *redis.Ring all have it.
type Client interface {
	redis.Scripter
	Process(ctx context.Context, cmd redis.Cmder) error
}

// Limiter is one policy enforced in Redis. It is safe for concurrent use.
type Limiter struct {
	rdb    Client
	algo   Algorithm
	policy quota.Policy
	prefix string
	script *redis.Script
	src    string // the script's text, for a node that has not seen it
	args   []any  // the script's fixed arguments, formatted once
	limit  int    // Decision.Limit: the policy's Limit, or GCRA's larger Burst
}

// New returns a limiter for p on rdb (a *redis.Client, *redis.ClusterClient
// or *redis.Ring), whatever its retry options: a check is never sent twice
// (see noRetry). Keys are prefix + "{" + id + "}"; prefix must not contain
// braces, or the hash tag would come from it and every client would share one
// cluster slot. A client should also apply context deadlines
// (ContextTimeoutEnabled), so a stalled Redis holds a check no longer than
// the caller's deadline; the middleware's Rule.Timeout answers on time
// either way.
func New(rdb Client, algo Algorithm, p quota.Policy, prefix string) (*Limiter, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redislimit: prefix %q contains a brace; the hash tag must be the client id", prefix)
	}
	window := p.Window.Microseconds()
	if float64(p.Limit)*float64(window) > 1<<53 {
		return nil, fmt.Errorf("redislimit: limit × window in µs exceeds 2^53 (%v)", p)
	}
	ms := func(us int64) string { return strconv.FormatInt((us+999)/1000, 10) }
	l := &Limiter{rdb: rdb, algo: algo, policy: p, prefix: prefix, limit: p.Limit}
	w, n := strconv.FormatInt(window, 10), strconv.Itoa(p.Limit)
	switch algo {
	case SlidingLog:
		l.script, l.src, l.args = logScript, logSrc, []any{w, n, ms(window)}
	case SlidingCounter:
		l.script, l.src, l.args = counterScript, counterSrc, []any{w, n, ms(2 * window)}
	case FixedWindow:
		l.script, l.src, l.args = fixedScript, fixedSrc, []any{w, n, ms(window)}
	case GCRA:
		interval := (window + int64(p.Limit) - 1) / int64(p.Limit) // rounded up: never faster than the policy
		tolerance := interval * int64(p.BurstSize())
		l.script, l.src, l.args = gcraScript, gcraSrc, []any{strconv.FormatInt(interval, 10), strconv.FormatInt(tolerance, 10), ms(tolerance + 1)}
		l.limit = max(p.Limit, p.BurstSize())
	default:
		return nil, fmt.Errorf("redislimit: unknown algorithm %d", algo)
	}
	return l, nil
}

// noRetry is a script call go-redis never sends a second time. A check
// whose reply is lost or late has run already, or will when a stalled Redis
// wakes; sent again, it would count one request twice. go-redis resends a
// command after a network error or a read timeout: a Client or a Ring up to
// MaxRetries times (3 by default), a ClusterClient up to MaxRedirects times
// (3 by default, whatever MaxRetries says). A command whose NoRetry reports
// true is resent only when it never reached the wire (a connection that
// failed before writing), where it is its first execution.
type noRetry struct{ *redis.Cmd }

func (noRetry) NoRetry() bool { return true }

// run calls the script by its hash, and by its text if Redis has not seen
// it (NOSCRIPT: nothing ran), each as a noRetry command.
func (l *Limiter) run(ctx context.Context, key string, args []any) ([]int64, error) {
	call := func(verb, script string) noRetry {
		cmd := noRetry{redis.NewCmd(ctx, append([]any{verb, script, 1, key}, args...)...)}
		_ = l.rdb.Process(ctx, cmd)
		return cmd
	}
	cmd := call("evalsha", l.script.Hash())
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		cmd = call("eval", l.src)
	}
	return cmd.Int64Slice()
}

// Algorithm returns the limiter's algorithm.
func (l *Limiter) Algorithm() Algorithm { return l.algo }

// Policy implements quota.Limiter.
func (l *Limiter) Policy() quota.Policy { return l.policy }

// Key is the Redis key holding id's state.
func (l *Limiter) Key(id string) string { return l.prefix + "{" + id + "}" }

// Load sends the script to Redis ahead of the first check (on a cluster, to
// every master), so that even the first check is one round trip. It is
// optional: a node that lost its script cache (a restart, a failover) costs
// one extra round trip on its next check, then none.
func (l *Limiter) Load(ctx context.Context) error {
	return l.script.Load(ctx, l.rdb).Err()
}

// Allow implements quota.Limiter: one EVALSHA.
func (l *Limiter) Allow(ctx context.Context, id string) (quota.Decision, error) {
	args := l.args
	if l.algo == SlidingLog {
		// A random member keeps two requests in the same microsecond
		// apart; as an integer it packs into 8 bytes of a listpack.
		args = append(args[:len(args):len(args)], rand.Int64())
	}
	v, err := l.run(ctx, l.Key(id), args)
	if err == nil && len(v) != 5 {
		err = fmt.Errorf("script returned %d values, want 5", len(v))
	}
	if err != nil {
		return quota.Decision{}, fmt.Errorf("redislimit %s: %w", l.algo, err)
	}
	return quota.Decision{
		Allowed:    v[0] == 1,
		Limit:      l.limit,
		Remaining:  int(v[1]),
		RetryAfter: time.Duration(v[2]) * time.Microsecond,
		Reset:      time.Duration(v[3]) * time.Microsecond,
		At:         time.UnixMicro(v[4]),
	}, nil
}
