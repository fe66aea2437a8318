// Package stampede keeps a hot key's expiry from turning into a flood of identical
// backend calls (a cache stampede, or thundering herd).
//
// The article's three defences, usable alone or together:
//
//   - Group deduplicates concurrent loads of one key within a process
//     (x/sync/singleflight), with a per-caller timeout and context so one slow backend
//     call cannot hold every waiter hostage. Its counters are atomics: the article's
//     GetOrFetch wrote a plain map from many goroutines, which is a data race.
//   - XFetch ("optimal probabilistic early expiration", Vattani et al., VLDB 2015)
//     lets one request refresh a key shortly before it expires, with a probability
//     that rises toward expiry, so a hot key is usually refreshed before anyone sees
//     it missing. The recompute time δ is kept as a time.Duration and compared in
//     float seconds: the article's integer milliseconds truncate δ < 1 ms to 0, which
//     silently turns early refresh off for fast backends.
//   - RedisLock deduplicates across processes: SET NX PX with a random token,
//     released by compare-and-delete; the processes that lose serve the old value if
//     they may, or wait a bounded time for the winner's.
//
// Loader combines them over an entry store (Redis or memory) and serves the old value
// when a refresh fails.
package stampede
