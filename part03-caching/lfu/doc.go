// Package lfu shows Redis's approximate LFU and LRU eviction on a real redis-server:
// the counter behind OBJECT FREQ, which keys survive when memory runs out, and how
// close maxmemory-samples brings allkeys-lru to a true LRU.
//
// Redis keeps 8 bits of "frequency" per key, starting at LFU_INIT_VAL = 5 (a new key
// is not the first thing evicted). Each access increments it with probability
// 1/((counter − 5)·lfu_log_factor + 1), so reaching counter c takes about
// f·(c − 5)²/2 accesses: the counter grows with the square root of the access count,
// not its logarithm (the article calls it a logarithmic Morris counter). It decays by
// one every lfu-decay-time minutes of idleness. Under allkeys-lfu and allkeys-lru,
// eviction samples maxmemory-samples keys (default 5; the article suggests 10–20)
// into a pool of 16 candidates and evicts the worst.
//
// The package starts its own redis-server (StartServer): maxmemory and the policy are
// server-wide, and changing them on a shared Redis would evict other people's keys.
package lfu
