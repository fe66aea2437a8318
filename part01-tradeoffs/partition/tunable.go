package partition

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Level is a per-query consistency level, as Cassandra offers them: how many
// of a key's N replicas a read or a write waits for before it answers.
type Level int

// The levels the article lists.
const (
	One    Level = iota + 1 // ONE: the first replica to answer
	Quorum                  // QUORUM: a majority, ⌊N/2⌋+1
	All                     // ALL: every replica
)

// String prints the level as CQL spells it: ONE, QUORUM, ALL.
func (l Level) String() string {
	switch l {
	case One:
		return "ONE"
	case Quorum:
		return "QUORUM"
	case All:
		return "ALL"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// Of returns how many of n replicas the level waits for.
func (l Level) Of(n int) int {
	switch l {
	case One:
		return 1
	case Quorum:
		return n/2 + 1
	case All:
		return n
	}
	panic(fmt.Sprintf("partition: unknown %v", l))
}

// Overlaps reports whether reads at level r always see writes made at level
// w on n replicas: R + W > N, so every set of replicas a read asks shares at
// least one with every set a write waited for.
func Overlaps(w, r Level, n int) bool { return w.Of(n)+r.Of(n) > n }

// ErrUnavailable is Cassandra's UnavailableException: the coordinator reaches
// fewer replicas than the level needs, so it refuses before writing anything.
var ErrUnavailable = errors.New("unavailable")

// Tunable is a leaderless register in the style of Dynamo and Cassandra, with
// the consistency level chosen per query. A write goes to every replica, but
// the coordinator acknowledges it as soon as W of them have applied it; the
// copies to the others are pending (replication lag) until Deliver lands them,
// and copies to replicas across a partition wait as hints until Heal. A read
// asks R reachable replicas and returns the newest value among their answers.
//
// Timestamps come from one counter, as if every node's clock were perfectly
// in sync, so "the latest write" is well defined and the only source of stale
// reads is a read set that misses the replicas holding it. There is no read
// repair, so the stale shares measured are those of replication lag alone.
//
// With a Delay set (SetDelay), every reachable replica answers each request
// after its own random delay, as in Dynamo: a write is acknowledged by the W
// replicas that answer first and a read uses the first R answers, so a
// request's latency is the W-th (R-th) fastest answer. That is PACELC's
// "else" branch: a higher level costs latency even with no partition.
// It is safe for concurrent use.
type Tunable struct {
	mu       sync.Mutex
	rng      *rand.Rand
	delay    Delay
	now      uint64             // the last timestamp handed out
	replicas []map[string]Value // index 0 is replica 1
	pending  []mutation         // copies on their way: replication lag
	hints    []mutation         // copies for replicas the coordinator could not reach
	net      network
}

// mutation is a write's copy on its way from its coordinator to a replica.
type mutation struct {
	from, to int // replica indexes
	key      string
	v        Value
}

// NewTunable returns a healed cluster of n replicas. seed drives the choice
// of which replicas answer first, so runs are reproducible.
func NewTunable(n int, seed uint64) (*Tunable, error) {
	if n < 1 {
		return nil, fmt.Errorf("need at least 1 replica, got %d", n)
	}
	c := &Tunable{rng: rand.New(rand.NewPCG(seed, 0x7475)), replicas: make([]map[string]Value, n), net: make(network, n)}
	for i := range c.replicas {
		c.replicas[i] = map[string]Value{}
	}
	return c, nil
}

// Delay is how long one replica takes to answer one request: a lognormal
// delay with the given median, whose logarithm has standard deviation Sigma
// (p99 ≈ Median·e^(2.33·Sigma)). The zero Delay answers at once.
type Delay struct {
	Median time.Duration
	Sigma  float64
}

func (d Delay) draw(rng *rand.Rand) time.Duration {
	return time.Duration(float64(d.Median) * math.Exp(d.Sigma*rng.NormFloat64()))
}

// SetDelay sets how long replicas take to answer from now on.
func (c *Tunable) SetDelay(d Delay) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delay = d
}

// Replicas returns N, the number of replicas.
func (c *Tunable) Replicas() int { return len(c.replicas) }

// Partition cuts the replicas in g1 off from the others, as Cluster.Partition.
func (c *Tunable) Partition(g1 ...int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.net.split(g1)
}

// Heal reconnects every replica and lands every pending copy (hinted handoff),
// so all replicas converge to each key's newest value.
func (c *Tunable) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.net.heal()
	for _, m := range slices.Concat(c.pending, c.hints) {
		c.apply(m.to, m.key, m.v)
	}
	c.pending, c.hints = nil, nil
}

// Deliver lands each pending copy whose target its coordinator can still reach
// with probability p, and returns how many landed: one tick of replication
// lag. Hints wait for Heal.
func (c *Tunable) Deliver(p float64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept, landed := c.pending[:0], 0
	for _, m := range c.pending {
		if c.net[m.from] == c.net[m.to] && c.rng.Float64() < p {
			c.apply(m.to, m.key, m.v)
			landed++
			continue
		}
		kept = append(kept, m)
	}
	clear(c.pending[len(kept):])
	c.pending = kept
	return landed
}

// Write stores data under key through coordinator replica coord and returns
// once w replicas have applied it. With fewer than w replicas reachable it
// fails with ErrUnavailable and writes nothing.
func (c *Tunable) Write(coord int, key, data string, w Level) (Value, error) {
	v, _, err := c.WriteTimed(coord, key, data, w)
	return v, err
}

// WriteTimed is Write that also returns how long the write took: the delay
// of the w-th replica to answer (0 without a Delay).
func (c *Tunable) WriteTimed(coord int, key, data string, w Level) (Value, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reach, err := c.reach(coord, w)
	if err != nil {
		return Value{}, 0, err
	}
	c.now++
	v := Value{Data: data, Version: Version{Counter: c.now, Replica: coord}}
	took := c.answerOrder(reach, w)
	acked := reach[:w.Of(len(c.replicas))] // the replicas that answered first
	for _, i := range acked {
		c.apply(i, key, v)
	}
	for i := range c.replicas {
		switch m := (mutation{from: coord - 1, to: i, key: key, v: v}); {
		case slices.Contains(acked, i):
		case slices.Contains(reach, i):
			c.pending = append(c.pending, m)
		default:
			c.hints = append(c.hints, m)
		}
	}
	return v, took, nil
}

// Read returns the newest value of key among the r reachable replicas that
// answer first (chosen at random without a Delay), through coordinator coord.
// It fails with ErrUnavailable when fewer than r replicas are reachable and
// with ErrNotFound when none of those asked holds the key.
func (c *Tunable) Read(coord int, key string, r Level) (Value, error) {
	v, _, err := c.ReadTimed(coord, key, r)
	return v, err
}

// ReadTimed is Read that also returns how long the read took: the delay of
// the r-th replica to answer (0 without a Delay).
func (c *Tunable) ReadTimed(coord int, key string, r Level) (Value, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reach, err := c.reach(coord, r)
	if err != nil {
		return Value{}, 0, err
	}
	var (
		out   Value
		found bool
		took  time.Duration
	)
	if c.delay == (Delay{}) {
		perm := c.rng.Perm(len(reach))
		for i, k := range perm {
			perm[i] = reach[k]
		}
		reach = perm
	} else {
		took = c.answerOrder(reach, r)
	}
	for _, i := range reach[:r.Of(len(c.replicas))] {
		if v, ok := c.replicas[i][key]; ok && (!found || out.Version.Less(v.Version)) {
			out, found = v, true
		}
	}
	if !found {
		return Value{}, took, fmt.Errorf("n%d at %v: %q: %w", coord, r, key, ErrNotFound)
	}
	return out, took, nil
}

// answerOrder puts reach in the order its replicas answer and returns when
// the level's last needed answer arrives. Without a Delay the order is a
// random shuffle and the answer immediate. Caller holds mu.
func (c *Tunable) answerOrder(reach []int, level Level) time.Duration {
	if c.delay == (Delay{}) {
		c.rng.Shuffle(len(reach), func(i, j int) { reach[i], reach[j] = reach[j], reach[i] })
		return 0
	}
	type answer struct {
		replica int
		at      time.Duration
	}
	answers := make([]answer, len(reach))
	for i, r := range reach {
		answers[i] = answer{r, c.delay.draw(c.rng)}
	}
	slices.SortFunc(answers, func(a, b answer) int { return cmp.Compare(a.at, b.at) })
	for i, a := range answers {
		reach[i] = a.replica
	}
	return answers[level.Of(len(c.replicas))-1].at
}

// reach lists the replicas coord reaches, or ErrUnavailable when they are
// fewer than level needs. Caller holds mu.
func (c *Tunable) reach(coord int, level Level) ([]int, error) {
	reach, err := c.net.reach(coord)
	if err != nil {
		return nil, err
	}
	if need := level.Of(len(c.replicas)); len(reach) < need {
		return nil, fmt.Errorf("n%d reaches %d of %d replicas, %v needs %d: %w",
			coord, len(reach), len(c.replicas), level, need, ErrUnavailable)
	}
	return reach, nil
}

// apply stores v on replica i unless it already holds a newer value (LWW by
// timestamp). Caller holds mu.
func (c *Tunable) apply(i int, key string, v Value) {
	if cur, ok := c.replicas[i][key]; !ok || cur.Version.Less(v.Version) {
		c.replicas[i][key] = v
	}
}

// Workload is a random mix of reads and writes through random coordinators,
// to measure how often a pair of levels returns the latest acknowledged
// write. Every key starts with one value on every replica; then the partition
// (if any) is cut and the operations run.
type Workload struct {
	Ops       int     // operations to run
	Keys      int     // distinct keys
	Writes    float64 // share of operations that are writes
	Lag       float64 // chance that a pending copy lands before each operation
	Partition []int   // G1 for the whole run; nil runs healthy
	Delay     Delay   // how long replicas take to answer; zero: at once
	Seed      uint64
}

// Tally is what a Workload saw. A read is stale when it returned an older
// value than the last write acknowledged for its key.
type Tally struct {
	Reads, StaleReads, RefusedReads int
	Writes, RefusedWrites           int
	// ReadTook and WriteTook are the latencies of the answered reads and
	// writes (all 0 without a Delay).
	ReadTook, WriteTook []time.Duration
}

// Run runs wl on c with writes at level w and reads at level r.
func (wl Workload) Run(c *Tunable, w, r Level) (Tally, error) {
	rng := rand.New(rand.NewPCG(wl.Seed, 0x776c))
	latest := make([]Version, wl.Keys) // the last acknowledged write per key
	for k := range latest {
		v, err := c.Write(1, fmt.Sprint("k", k), "v0", All)
		if err != nil {
			return Tally{}, err
		}
		latest[k] = v.Version
	}
	c.Heal()
	c.SetDelay(wl.Delay)
	if wl.Partition != nil {
		if err := c.Partition(wl.Partition...); err != nil {
			return Tally{}, err
		}
	}
	var t Tally
	for op := range wl.Ops {
		c.Deliver(wl.Lag)
		coord, k := 1+rng.IntN(c.Replicas()), rng.IntN(wl.Keys)
		key := fmt.Sprint("k", k)
		if rng.Float64() < wl.Writes {
			t.Writes++
			v, took, err := c.WriteTimed(coord, key, fmt.Sprint("v", op+1), w)
			switch {
			case errors.Is(err, ErrUnavailable):
				t.RefusedWrites++
			case err != nil:
				return t, err
			default:
				latest[k] = v.Version
				t.WriteTook = append(t.WriteTook, took)
			}
			continue
		}
		t.Reads++
		v, took, err := c.ReadTimed(coord, key, r)
		switch {
		case errors.Is(err, ErrUnavailable):
			t.RefusedReads++
			continue
		case err != nil:
			return t, err
		case v.Version.Less(latest[k]):
			t.StaleReads++
		}
		t.ReadTook = append(t.ReadTook, took)
	}
	return t, nil
}
