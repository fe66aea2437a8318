package redislimit

import "github.com/redis/go-redis/v9"

// Every script reads the clock with TIME inside Redis: one clock per key (the
// master that owns it), whatever the application servers' clocks say. Times
// are microseconds, exact in Lua's float64 up to 2^53 (year 2255). Each
// returns {allowed, remaining, retry_after_us, reset_us, now_us}; reset is
// how long until one more request would be admitted if the client used all
// of remaining now.
//
// Stored numbers are written with string.format('%.0f') so no Lua
// number-to-string conversion can round them; TTLs come from the caller as
// integer milliseconds.

// logScript is the article's sliding-window log, with TIME instead of an
// application timestamp and the retry time of the oldest entry instead of the
// whole window. KEYS[1] a sorted set; ARGV window_us, limit, ttl_ms, member.
const logSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local key, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now - window))
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, string.format('%.0f', now), ARGV[4])
  redis.call('PEXPIRE', key, ARGV[3])
  count = count + 1
  allowed = 1
end
local oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
local free = oldest + window - now
if allowed == 1 then
  return {1, limit - count, 0, free, now}
end
return {0, 0, free, free, now}
`

var logScript = redis.NewScript(logSrc)

// counterScript is the sliding-window counter: the previous fixed window's
// count, weighted by how much of it the sliding window still covers, plus
// the current one's. O(1) memory per key (one small hash), at the price of
// assuming the previous window's requests were spread evenly. Integer
// arithmetic: the weighted count is compared multiplied by window.
// KEYS[1] a hash {w, c, p}; ARGV window_us, limit, ttl_ms (2 windows).
const counterSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local key, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local idx = math.floor(now / window)
local elapsed = now - idx * window
local h = redis.call('HMGET', key, 'w', 'c', 'p')
local w, cur, prev = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
if w ~= idx then
  if w == idx - 1 then prev = cur else prev = 0 end
  cur = 0
end
-- how long until one more request fits if the current window holds c
local function wait(c)
  local budget = (limit - c - 1) * window
  if budget >= 0 then
    if prev * (window - elapsed) <= budget then return 0 end
    return window - math.floor(budget / prev) - elapsed
  end
  return window - elapsed + window - math.floor((limit - 1) * window / c)
end
local r = wait(cur)
if r > 0 then
  return {0, 0, r, r, now}
end
if w == idx then
  redis.call('HINCRBY', key, 'c', 1)
else
  redis.call('HSET', key, 'w', string.format('%.0f', idx), 'c', 1, 'p', prev)
  redis.call('PEXPIRE', key, ARGV[3])
end
cur = cur + 1
local remaining = math.floor((limit * window - prev * (window - elapsed)) / window) - cur
if remaining < 0 then remaining = 0 end
return {1, remaining, 0, wait(cur + remaining), now}
`

var counterScript = redis.NewScript(counterSrc)

// gcraScript is the generic cell rate algorithm: one timestamp per key, the
// theoretical arrival time (TAT) of the next request at the steady rate.
// A request is admitted if it is no earlier than TAT − burst×interval.
// KEYS[1] a string; ARGV interval_us, tolerance_us (burst×interval), ttl_ms.
const gcraSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local key, interval, tolerance = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', key)) or now
if tat < now then tat = now end
local new_tat = tat + interval
local diff = now - (new_tat - tolerance)
if diff < 0 then
  return {0, 0, -diff, -diff, now}
end
redis.call('SET', key, string.format('%.0f', new_tat), 'PX', ARGV[3])
local remaining = math.floor(diff / interval)
return {1, remaining, 0, (remaining + 1) * interval - diff, now}
`

var gcraScript = redis.NewScript(gcraSrc)

// fixedScript is the fixed window counter, the baseline the sliding
// algorithms improve on: a client can spend the limit at the end of one
// window and again at the start of the next.
// KEYS[1] a hash {w, c}; ARGV window_us, limit, ttl_ms (1 window).
const fixedSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local key, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local idx = math.floor(now / window)
local reset = (idx + 1) * window - now
local h = redis.call('HMGET', key, 'w', 'c')
local cur = 0
if tonumber(h[1]) == idx then cur = tonumber(h[2]) end
if cur >= limit then
  return {0, 0, reset, reset, now}
end
if cur == 0 then
  redis.call('HSET', key, 'w', string.format('%.0f', idx), 'c', 1)
  redis.call('PEXPIRE', key, ARGV[3])
else
  redis.call('HINCRBY', key, 'c', 1)
end
return {1, limit - cur - 1, 0, reset, now}
`

var fixedScript = redis.NewScript(fixedSrc)
