package lfu

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config sizes the LFU experiment.
type Config struct {
	Keys      int     // keys loaded, ranked 1..Keys by popularity (default 2000)
	ValueSize int     // bytes per value (default 1024)
	Accesses  int     // GETs drawn from a Zipf distribution over the ranks (default 100,000)
	ZipfS     float64 // Zipf exponent, > 1 (default 1.1)
	LogFactor int     // lfu-log-factor (default 10, as in the article)
	DecayTime int     // lfu-decay-time in minutes (default 1, as in the article)
	Samples   int     // maxmemory-samples (default 10: the article suggests 10–20)
	Seed      uint64  // Zipf seed, so a run can be repeated (default 1)
	// LRUGap is how long the LRU run waits between the accesses and the filler
	// writes: Redis's LRU clock ticks once a second, so without a gap the fillers
	// would look no newer than the hot keys. Default 1.1 s.
	LRUGap time.Duration
	// LRUSamples lists the maxmemory-samples values whose LRU accuracy is measured
	// (default 1, 5, 10, 20: 1 is random eviction, 5 Redis's default, 10–20 the
	// article's advice).
	LRUSamples []int
	// LRUKeys is how many keys the LRU accuracy runs load (default 4000: about 2,000
	// evictions per run, so each share is measured to about ±0.7 points).
	LRUKeys int
}

func (c *Config) defaults() {
	if c.Keys <= 0 {
		c.Keys = 2000
	}
	if c.ValueSize <= 0 {
		c.ValueSize = 1024
	}
	if c.Accesses <= 0 {
		c.Accesses = 100_000
	}
	if c.ZipfS <= 1 {
		c.ZipfS = 1.1
	}
	if c.LogFactor <= 0 {
		c.LogFactor = 10
	}
	if c.DecayTime <= 0 {
		c.DecayTime = 1
	}
	if c.Samples <= 0 {
		c.Samples = 10
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.LRUGap <= 0 {
		c.LRUGap = 1100 * time.Millisecond
	}
	if c.LRUKeys <= 0 {
		c.LRUKeys = 4000
	}
	if len(c.LRUSamples) == 0 {
		c.LRUSamples = []int{1, 5, 10, 20}
	}
}

// KeyStat is one sampled key's counter next to what the Morris model predicts.
type KeyStat struct {
	Rank      int
	Accesses  int          // GETs this key received
	Freq      int          // OBJECT FREQ
	Predicted CounterRange // the counter's distribution after Accesses, by the model
	PNext     float64      // chance the next GET increments Freq
}

// Bucket counts survivors among keys ranked From..To (filler keys: From = To = 0).
type Bucket struct {
	Label        string
	Keys         int
	SurvivedLFU  int
	SurvivedLRU  int
	MeanAccesses float64
}

// Report is the outcome of Run.
type Report struct {
	Config Config
	// NewKeyFreq is OBJECT FREQ of a key just written, before any read: Redis starts
	// a key's counter at LFU_INIT_VAL (5), not 0. AfterOneGET is the counter after
	// one GET (P(increment) = 1 while the counter is at LFU_INIT_VAL or below).
	NewKeyFreq, AfterOneGET int
	Sample                  []KeyStat
	Buckets                 []Bucket
	MaxMemory               int64 // bytes, set just above the loaded data set
	EvictedLFU              int64
	EvictedLRU              int64
	Fillers                 int
	LRU                     []LRUAccuracy // one row per Config.LRUSamples value
}

// Run loads cfg.Keys keys under allkeys-lfu, reads them with a Zipf-skewed
// distribution, records OBJECT FREQ for a sample of ranks, then caps maxmemory at the
// memory in use and writes as many one-time filler keys as there are keys, so about
// half of everything must be evicted. It repeats the load and fill under allkeys-lru
// for comparison. rdb must point at a server this process owns (see StartServer):
// Run flushes it and changes server-wide settings.
func Run(ctx context.Context, rdb *redis.Client, cfg Config) (Report, error) {
	cfg.defaults()
	r := Report{Config: cfg, Fillers: cfg.Keys}
	hits := zipfAccesses(cfg)

	lfu, err := runPolicy(ctx, rdb, cfg, "allkeys-lfu", hits, &r)
	if err != nil {
		return r, err
	}
	for _, samples := range cfg.LRUSamples {
		row, err := lruAccuracy(ctx, rdb, cfg, samples)
		if err != nil {
			return r, err
		}
		r.LRU = append(r.LRU, row)
	}
	lru, err := runPolicy(ctx, rdb, cfg, "allkeys-lru", hits, nil)
	if err != nil {
		return r, err
	}
	r.EvictedLFU, r.EvictedLRU = lfu.evicted, lru.evicted

	ranges := [][2]int{{1, 10}, {11, 100}, {101, cfg.Keys / 2}, {cfg.Keys/2 + 1, cfg.Keys}}
	for _, rg := range ranges {
		if rg[0] > rg[1] {
			continue
		}
		b := Bucket{Label: fmt.Sprintf("ranks %d–%d", rg[0], rg[1]), Keys: rg[1] - rg[0] + 1}
		total := 0
		for rank := rg[0]; rank <= rg[1]; rank++ {
			total += hits[rank-1]
			if lfu.survived[rank-1] {
				b.SurvivedLFU++
			}
			if lru.survived[rank-1] {
				b.SurvivedLRU++
			}
		}
		b.MeanAccesses = float64(total) / float64(b.Keys)
		r.Buckets = append(r.Buckets, b)
	}
	f := Bucket{Label: "one-time fillers", Keys: cfg.Keys}
	for i := cfg.Keys; i < 2*cfg.Keys; i++ {
		if lfu.survived[i] {
			f.SurvivedLFU++
		}
		if lru.survived[i] {
			f.SurvivedLRU++
		}
	}
	r.Buckets = append(r.Buckets, f)
	return r, nil
}

type outcome struct {
	survived []bool // ranks 1..Keys, then fillers
	evicted  int64
}

func rankKey(rank int) string { return fmt.Sprintf("lfu:rank:%05d", rank) }
func fillKey(i int) string    { return fmt.Sprintf("lfu:fill:%05d", i) }

// reset empties the server and sets the policy (first: a key's LFU counter is
// initialised when the key is created) and the LFU and sampling parameters.
func reset(ctx context.Context, rdb *redis.Client, cfg Config, policy string, samples int) error {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		return err
	}
	for _, kv := range [][2]string{
		{"maxmemory", "0"},
		{"maxmemory-policy", policy},
		{"lfu-log-factor", strconv.Itoa(cfg.LogFactor)},
		{"lfu-decay-time", strconv.Itoa(cfg.DecayTime)},
		{"maxmemory-samples", strconv.Itoa(samples)},
	} {
		if err := rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			return fmt.Errorf("CONFIG SET %s %s: %w", kv[0], kv[1], err)
		}
	}
	return nil
}

// probeNewKey writes one key and reads OBJECT FREQ before and after one GET (OBJECT
// does not count as an access).
func probeNewKey(ctx context.Context, rdb *redis.Client, value string) (fresh, afterGET int, err error) {
	const k = "lfu:probe"
	if err = rdb.Set(ctx, k, value, 0).Err(); err != nil {
		return 0, 0, err
	}
	f, err := rdb.ObjectFreq(ctx, k).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("OBJECT FREQ %s: %w", k, err)
	}
	if err = rdb.Get(ctx, k).Err(); err != nil {
		return 0, 0, err
	}
	g, err := rdb.ObjectFreq(ctx, k).Result()
	if err != nil {
		return 0, 0, err
	}
	return int(f), int(g), rdb.Del(ctx, k).Err()
}

func runPolicy(ctx context.Context, rdb *redis.Client, cfg Config, policy string, hits []int, rep *Report) (outcome, error) {
	var out outcome
	if err := reset(ctx, rdb, cfg, policy, cfg.Samples); err != nil {
		return out, err
	}
	var err error
	value := strings.Repeat("x", cfg.ValueSize)
	if rep != nil {
		if rep.NewKeyFreq, rep.AfterOneGET, err = probeNewKey(ctx, rdb, value); err != nil {
			return out, err
		}
	}
	if err := pipelined(ctx, rdb, cfg.Keys, func(p redis.Pipeliner, i int) { p.Set(ctx, rankKey(i+1), value, 0) }); err != nil {
		return out, err
	}
	// Replay the same access sequence for both policies, interleaved by rank so
	// recency alone does not favour any rank (round-robin over remaining hits).
	order := interleave(hits)
	if err := pipelined(ctx, rdb, len(order), func(p redis.Pipeliner, i int) { p.Get(ctx, rankKey(order[i])) }); err != nil {
		return out, err
	}
	if rep != nil {
		sample, err := sampleFreqs(ctx, rdb, cfg, hits)
		if err != nil {
			return out, err
		}
		rep.Sample = sample
	}
	if policy == "allkeys-lru" {
		time.Sleep(cfg.LRUGap)
	}
	used, err := usedMemory(ctx, rdb)
	if err != nil {
		return out, err
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used, 10)).Err(); err != nil {
		return out, err
	}
	if rep != nil {
		rep.MaxMemory = used
	}
	if err := pipelined(ctx, rdb, cfg.Keys, func(p redis.Pipeliner, i int) { p.Set(ctx, fillKey(i), value, 0) }); err != nil {
		return out, err
	}
	out.survived = make([]bool, 2*cfg.Keys)
	cmds := make([]*redis.IntCmd, 2*cfg.Keys)
	if err := pipelined(ctx, rdb, 2*cfg.Keys, func(p redis.Pipeliner, i int) {
		k := fillKey(i - cfg.Keys)
		if i < cfg.Keys {
			k = rankKey(i + 1)
		}
		// EXISTS does not touch the key's LRU/LFU data, so checking changes nothing.
		cmds[i] = p.Exists(ctx, k)
	}); err != nil {
		return out, err
	}
	for i, c := range cmds {
		out.survived[i] = c.Val() == 1
	}
	info, err := rdb.Info(ctx, "stats").Result()
	if err != nil {
		return out, err
	}
	out.evicted = infoInt(info, "evicted_keys")
	return out, nil
}

func sampleFreqs(ctx context.Context, rdb *redis.Client, cfg Config, hits []int) ([]KeyStat, error) {
	var ranks []int
	for _, r := range []int{1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000} {
		if r <= cfg.Keys {
			ranks = append(ranks, r)
		}
	}
	ns := make([]int, len(ranks))
	for i, r := range ranks {
		ns[i] = hits[r-1]
	}
	pred := Predict(ns, cfg.LogFactor)
	var out []KeyStat
	for _, r := range ranks {
		freq, err := rdb.ObjectFreq(ctx, rankKey(r)).Result()
		if err != nil {
			return nil, fmt.Errorf("OBJECT FREQ %s: %w", rankKey(r), err)
		}
		out = append(out, KeyStat{
			Rank: r, Accesses: hits[r-1], Freq: int(freq),
			Predicted: pred[hits[r-1]], PNext: IncrProbability(int(freq), cfg.LogFactor),
		})
	}
	return out, nil
}

// zipfAccesses draws cfg.Accesses ranks from Zipf(s, v=1) and returns hits per rank.
func zipfAccesses(cfg Config) []int {
	z := rand.NewZipf(rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), cfg.ZipfS, 1, uint64(cfg.Keys-1))
	hits := make([]int, cfg.Keys)
	for range cfg.Accesses {
		hits[z.Uint64()]++
	}
	return hits
}

// interleave turns hit counts into an access order that visits every rank with hits
// left in each round, so the last round (most recent accesses) holds the hottest keys
// and the first rounds touch every key that was read at all.
func interleave(hits []int) []int {
	left := slices.Clone(hits)
	total := 0
	for _, h := range hits {
		total += h
	}
	order := make([]int, 0, total)
	for len(order) < total {
		for i, h := range left {
			if h > 0 {
				order = append(order, i+1)
				left[i]--
			}
		}
	}
	return order
}

func pipelined(ctx context.Context, rdb *redis.Client, n int, add func(redis.Pipeliner, int)) error {
	const batch = 500
	for start := 0; start < n; start += batch {
		p := rdb.Pipeline()
		for i := start; i < min(start+batch, n); i++ {
			add(p, i)
		}
		if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
			return err
		}
	}
	return nil
}

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	return infoInt(info, "used_memory"), nil
}

func infoInt(info, field string) int64 {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return -1
}
