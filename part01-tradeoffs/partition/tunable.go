package partition

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
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
// It is safe for concurrent use.
type Tunable struct {
	mu       sync.Mutex
	rng      *rand.Rand
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
	c.mu.Lock()
	defer c.mu.Unlock()
	reach, err := c.reach(coord, w)
	if err != nil {
		return Value{}, err
	}
	c.now++
	v := Value{Data: data, Version: Version{Counter: c.now, Replica: coord}}
	c.rng.Shuffle(len(reach), func(i, j int) { reach[i], reach[j] = reach[j], reach[i] })
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
	return v, nil
}

// Read returns the newest value of key among r reachable replicas, chosen at
// random, through coordinator coord. It fails with ErrUnavailable when fewer
// than r replicas are reachable and with ErrNotFound when none of those asked
// holds the key.
func (c *Tunable) Read(coord int, key string, r Level) (Value, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reach, err := c.reach(coord, r)
	if err != nil {
		return Value{}, err
	}
	var (
		out   Value
		found bool
	)
	for _, k := range c.rng.Perm(len(reach))[:r.Of(len(c.replicas))] {
		if v, ok := c.replicas[reach[k]][key]; ok && (!found || out.Version.Less(v.Version)) {
			out, found = v, true
		}
	}
	if !found {
		return Value{}, fmt.Errorf("n%d at %v: %q: %w", coord, r, key, ErrNotFound)
	}
	return out, nil
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
	Seed      uint64
}

// Tally is what a Workload saw. A read is stale when it returned an older
// value than the last write acknowledged for its key.
type Tally struct {
	Reads, StaleReads, RefusedReads int
	Writes, RefusedWrites           int
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
			v, err := c.Write(coord, key, fmt.Sprint("v", op+1), w)
			switch {
			case errors.Is(err, ErrUnavailable):
				t.RefusedWrites++
			case err != nil:
				return t, err
			default:
				latest[k] = v.Version
			}
			continue
		}
		t.Reads++
		v, err := c.Read(coord, key, r)
		switch {
		case errors.Is(err, ErrUnavailable):
			t.RefusedReads++
		case err != nil:
			return t, err
		case v.Version.Less(latest[k]):
			t.StaleReads++
		}
	}
	return t, nil
}
