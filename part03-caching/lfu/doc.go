// Package lfu shows Redis's approximate LFU eviction on a real redis-server: the
// Morris counter behind OBJECT FREQ, and which keys survive when memory runs out.
//
// Redis keeps 8 bits of "frequency" per key. Each access increments it with
// probability 1/((counter − 5)·lfu_log_factor + 1), so the counter grows roughly with
// the logarithm of the access count (a Morris counter), and it decays by one every
// lfu-decay-time minutes of idleness. Under maxmemory-policy allkeys-lfu, eviction
// samples maxmemory-samples keys (default 5; the article suggests 10–20) and evicts
// the lowest counter.
//
// The package starts its own redis-server (StartServer): maxmemory and the policy are
// server-wide, and changing them on a shared Redis would evict other people's keys.
package lfu
