// Package redisstore is an idempotency.Store on Redis 7+ (go-redis v9): one
// string key per record, "idemp:<tenant>:<key>", holding the record as JSON
// with the record's TTL, the article's layout with the key scoped by tenant.
//
// Round trips: Claim is one SET … NX PX … GET, which claims the key or
// returns the live record in the same command (Redis 7.0 allows NX with GET),
// so a first request costs Claim + Complete = 2 and a replay 1. The article's
// middleware spends 3 on a first request (GET, SETNX, SET). The SET runs in a
// script that first compares Redis's clock (TIME) with the caller's deadline,
// so a claim a stalled Redis runs after the caller gave up does nothing (the
// renew script does the same).
// Complete, Renew and Release are scripts that compare the holder's token
// first, so a holder whose claim expired can never overwrite the request that
// took it over; run Preload once so each is one EVALSHA.
//
// Durability is Redis's: without AOF (appendfsync always) a crash or a
// failover to a replica that had not yet received the claim forgets it, and
// a retry then runs the handler again. The stack's Redis keeps nothing on
// disk; TestFaultRedisKilledMidRequest shows what survives a kill.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
)

var _ idempotency.Store = (*Store)(nil)

// DefaultPrefix starts every key the store writes: the article's "idemp:".
const DefaultPrefix = "idemp:"

// Store is an idempotency.Store on one Redis (or a Redis Cluster: every
// command and script touches one key).
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// New returns a Store writing keys under DefaultPrefix.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb, prefix: DefaultPrefix} }

// WithPrefix returns a copy of s that writes keys under prefix instead, so
// tests and several services can share one Redis.
func (s *Store) WithPrefix(prefix string) *Store { return &Store{rdb: s.rdb, prefix: prefix} }

// Preload loads the scripts into Redis's script cache, so the first Complete
// is one EVALSHA instead of EVALSHA + EVAL. Without it everything still works;
// after a Redis restart the first call of each script costs that extra trip.
func (s *Store) Preload(ctx context.Context) error {
	for _, sc := range []*redis.Script{claimScript, renewScript, completeScript, releaseScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("redisstore: load scripts: %w", err)
		}
	}
	return nil
}

func (s *Store) name(key idempotency.Key) string { return s.prefix + key.String() }

// wire is a record as stored: the article's field names, the body as base64
// (a response body need not be UTF-8).
type wire struct {
	State           string      `json:"state"`
	PayloadHash     string      `json:"payload_hash"`
	Token           string      `json:"token"`
	ResponseCode    int         `json:"response_code,omitempty"`
	ResponseHeaders http.Header `json:"response_headers,omitempty"`
	ResponseBody    []byte      `json:"response_body,omitempty"`
	BodyOmitted     bool        `json:"body_omitted,omitempty"`
}

func encode(r idempotency.Record) ([]byte, error) {
	return json.Marshal(wire{
		State: r.State.String(), PayloadHash: r.Fingerprint.String(), Token: r.Token,
		ResponseCode: r.Status, ResponseHeaders: r.Header, ResponseBody: r.Body, BodyOmitted: r.BodyOmitted,
	})
}

func decode(b []byte) (*idempotency.Record, error) {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("redisstore: undecodable record: %w", err)
	}
	fp, err := idempotency.ParseFingerprint(w.PayloadHash)
	if err != nil {
		return nil, fmt.Errorf("redisstore: undecodable record: %w", err)
	}
	state := idempotency.ParseState(w.State)
	if state == 0 {
		return nil, fmt.Errorf("redisstore: undecodable record: state %q", w.State)
	}
	return &idempotency.Record{State: state, Fingerprint: fp, Token: w.Token,
		Status: w.ResponseCode, Header: w.ResponseHeaders, Body: w.ResponseBody, BodyOmitted: w.BodyOmitted}, nil
}

// late is Lua shared by the claim and renew scripts: whether Redis's clock
// is past deadline (µs since the epoch; '0': no deadline).
const late = `
local function late(deadline)
  if deadline == '0' then return false end
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000000 + tonumber(now[2]) > tonumber(deadline)
end
`

// errLate is the scripts' answer to a call that reached Redis after its
// deadline: nothing was written.
const errLate = "LATE the call reached Redis after its deadline"

// claimScript: KEYS[1]; ARGV claim JSON, ttl ms, deadline. SET NX PX GET,
// unless Redis's clock is past the deadline.
var claimScript = redis.NewScript(late + `
if late(ARGV[3]) then return redis.error_reply('` + errLate + `') end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2], 'GET')
`)

// deadline is ctx's deadline in µs since the epoch, as the scripts take it;
// 0 if it has none.
func deadline(ctx context.Context) int64 {
	if d, ok := ctx.Deadline(); ok {
		return max(d.UnixMicro(), 1)
	}
	return 0
}

// scriptErr wraps a script's error; errLate becomes context.DeadlineExceeded.
func scriptErr(op string, err error) error {
	if strings.HasPrefix(err.Error(), "LATE ") {
		return fmt.Errorf("redisstore: %s: %w (Redis ran it after the deadline and wrote nothing)", op, context.DeadlineExceeded)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// Claim implements idempotency.Store with one script: SET key claim NX PX ttl
// GET, run only while Redis's clock is before ctx's deadline, so a command
// that a stalled Redis runs after the caller gave up claims nothing.
func (s *Store) Claim(ctx context.Context, key idempotency.Key, claim idempotency.Record, ttl time.Duration) (*idempotency.Record, error) {
	val, err := encode(claim)
	if err != nil {
		return nil, err
	}
	old, err := claimScript.Run(ctx, s.rdb, []string{s.name(key)}, val, ttl.Milliseconds(), deadline(ctx)).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil // nothing was there: the claim is ours
	case err != nil:
		return nil, scriptErr("claim", err)
	}
	return decode([]byte(old))
}

// owner is Lua shared by the scripts: the current record's state and token,
// or nil when the key is absent; a value that is not a record reads as
// someone else's.
const owner = `
local function owner(key)
  local cur = redis.call('GET', key)
  if not cur then return nil end
  local ok, rec = pcall(cjson.decode, cur)
  if not ok or type(rec) ~= 'table' then return {state = '', token = ''} end
  return rec
end
`

// renewScript: KEYS[1]; ARGV token, claim JSON, ttl ms, deadline. 1 = held,
// 0 = lost; nothing is written past the deadline.
var renewScript = redis.NewScript(owner + late + `
if late(ARGV[4]) then return redis.error_reply('` + errLate + `') end
local rec = owner(KEYS[1])
if rec == nil then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if rec.token ~= ARGV[1] then return 0 end
if rec.state == 'in-progress' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`)

// completeScript: KEYS[1]; ARGV token, record JSON, ttl ms. 1 = written, 0 = lost.
var completeScript = redis.NewScript(owner + `
local rec = owner(KEYS[1])
if rec ~= nil and rec.token ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// releaseScript: KEYS[1]; ARGV token. Deletes only the holder's in-progress claim.
var releaseScript = redis.NewScript(owner + `
local rec = owner(KEYS[1])
if rec ~= nil and rec.token == ARGV[1] and rec.state == 'in-progress' then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Renew implements idempotency.Store.
func (s *Store) Renew(ctx context.Context, key idempotency.Key, claim idempotency.Record, ttl time.Duration) error {
	val, err := encode(claim)
	if err != nil {
		return err
	}
	held, err := renewScript.Run(ctx, s.rdb, []string{s.name(key)}, claim.Token, val, ttl.Milliseconds(), deadline(ctx)).Int()
	if err != nil {
		return scriptErr("renew", err)
	}
	if held == 0 {
		return idempotency.ErrClaimLost
	}
	return nil
}

// Complete implements idempotency.Store.
func (s *Store) Complete(ctx context.Context, key idempotency.Key, rec idempotency.Record, ttl time.Duration) error {
	val, err := encode(rec)
	if err != nil {
		return err
	}
	written, err := completeScript.Run(ctx, s.rdb, []string{s.name(key)}, rec.Token, val, ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redisstore: complete: %w", err)
	}
	if written == 0 {
		return idempotency.ErrClaimLost
	}
	return nil
}

// Release implements idempotency.Store.
func (s *Store) Release(ctx context.Context, key idempotency.Key, token string) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{s.name(key)}, token).Err(); err != nil {
		return fmt.Errorf("redisstore: release: %w", err)
	}
	return nil
}
