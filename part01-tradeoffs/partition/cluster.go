// Package partition simulates the situation in Gilbert and Lynch's proof of
// the CAP theorem: a replicated register whose replicas a network partition
// splits into groups G1 and G2. A write reaches G1, a read reaches G2, and the
// system must either answer with stale data (choose availability, AP) or not
// answer at all (choose consistency, CP).
//
// Nothing here touches a network: the partition is a flag, so tests can show
// each mode's behaviour deterministically, during the partition and after it
// heals. The package also holds the article's PACELC classification table.
package partition

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Mode is the side of the CAP trade-off a cluster takes during a partition.
type Mode int

const (
	// CP refuses reads and writes on any replica that cannot reach a majority
	// (a quorum) of replicas. Answers are never stale; minorities go dark.
	CP Mode = iota + 1
	// AP serves every request from whatever replicas it can reach. Answers may
	// be stale and concurrent writes conflict; Heal resolves them with
	// last-writer-wins.
	AP
)

func (m Mode) String() string {
	switch m {
	case CP:
		return "CP"
	case AP:
		return "AP"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Errors returned by Cluster. Compare with errors.Is.
var (
	ErrNoQuorum       = errors.New("no quorum")
	ErrNotFound       = errors.New("key not found")
	ErrUnknownReplica = errors.New("unknown replica")
)

// Version orders writes for last-writer-wins. Counter is a Lamport clock: a
// write takes one more than the highest counter its replica can see for the
// key. Two writes made on opposite sides of a partition can carry the same
// counter; the higher Replica number then wins. The order is arbitrary but the
// same on every replica, which is all convergence needs; it is also why LWW
// silently drops one of two concurrent writes.
type Version struct {
	Counter uint64
	Replica int
}

// Less reports whether v was superseded by w under last-writer-wins.
func (v Version) Less(w Version) bool {
	if v.Counter != w.Counter {
		return v.Counter < w.Counter
	}
	return v.Replica < w.Replica
}

// String prints "#counter@replica", e.g. "#2@n1".
func (v Version) String() string { return fmt.Sprintf("#%d@n%d", v.Counter, v.Replica) }

// Value is a stored datum with the version that wrote it.
type Value struct {
	Data    string
	Version Version
}

// Conflict is a key written on both sides of a partition. Heal keeps the value
// with the higher Version and discards the others: the lost update of LWW.
type Conflict struct {
	Key  string
	Kept Value
	Lost []Value
}

// Cluster is a replicated key-value register with a switchable partition. It
// is safe for concurrent use. Replicas are numbered 1..n.
type Cluster struct {
	mu       sync.Mutex
	mode     Mode
	replicas []map[string]Value // index 0 is replica 1
	side     []int              // partition group of each replica; all 0 when healed
	// written holds, per partition side, the last value written there for each
	// key while partitioned: what Heal reports as conflicts.
	written map[int]map[string]Value
}

// New returns a healed cluster of n replicas in the given mode.
func New(mode Mode, n int) (*Cluster, error) {
	if mode != CP && mode != AP {
		return nil, fmt.Errorf("unknown mode %v", mode)
	}
	if n < 1 {
		return nil, fmt.Errorf("need at least 1 replica, got %d", n)
	}
	c := &Cluster{mode: mode, replicas: make([]map[string]Value, n), side: make([]int, n)}
	for i := range c.replicas {
		c.replicas[i] = map[string]Value{}
	}
	return c, nil
}

// Mode returns the cluster's CAP mode.
func (c *Cluster) Mode() Mode { return c.mode }

// Replicas returns the number of replicas.
func (c *Cluster) Replicas() int { return len(c.replicas) }

// Quorum is the majority a CP cluster needs: ⌊n/2⌋+1. With the article's two
// replicas it is 2, so any partition stops a CP cluster on both sides.
func (c *Cluster) Quorum() int { return len(c.replicas)/2 + 1 }

// Partition cuts the replicas in g1 off from the others (g2 is the rest); both
// groups must be non-empty. Partitioning an already partitioned cluster
// replaces the old split.
func (c *Cluster) Partition(g1 ...int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	side := make([]int, len(c.replicas))
	cut := 0
	for _, r := range g1 {
		if err := c.check(r); err != nil {
			return err
		}
		if side[r-1] == 0 {
			side[r-1], cut = 1, cut+1
		}
	}
	if cut == 0 || cut == len(c.replicas) {
		return fmt.Errorf("partition of %v leaves one side of %d replicas empty", g1, len(c.replicas))
	}
	c.side = side
	if c.written == nil {
		c.written = map[int]map[string]Value{0: {}, 1: {}}
	}
	return nil
}

// Partitioned reports whether a partition is in force.
func (c *Cluster) Partitioned() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written != nil
}

// Heal reconnects every replica and runs anti-entropy: each key converges to
// its highest Version on all replicas. It returns the keys that were written
// on both sides while partitioned, sorted by key.
func (c *Cluster) Heal() []Conflict {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.side {
		c.side[i] = 0
	}
	latest := map[string]Value{}
	for _, rep := range c.replicas {
		for k, v := range rep {
			if cur, ok := latest[k]; !ok || cur.Version.Less(v.Version) {
				latest[k] = v
			}
		}
	}
	for _, rep := range c.replicas {
		for k, v := range latest {
			rep[k] = v
		}
	}
	var conflicts []Conflict
	for k, a := range c.written[0] {
		b, ok := c.written[1][k]
		if !ok {
			continue
		}
		kept := latest[k]
		cf := Conflict{Key: k, Kept: kept}
		for _, v := range []Value{a, b} {
			if v.Version != kept.Version {
				cf.Lost = append(cf.Lost, v)
			}
		}
		conflicts = append(conflicts, cf)
	}
	sort.Slice(conflicts, func(i, j int) bool { return conflicts[i].Key < conflicts[j].Key })
	c.written = nil
	return conflicts
}

// Write stores data under key through replica r and copies it to every
// replica r can reach. In CP mode it fails with ErrNoQuorum unless r reaches a
// majority; in AP mode it always succeeds.
func (c *Cluster) Write(r int, key, data string) (Value, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reach, err := c.reachable(r)
	if err != nil {
		return Value{}, err
	}
	var top Version
	for _, i := range reach {
		if v, ok := c.replicas[i][key]; ok && top.Less(v.Version) {
			top = v.Version
		}
	}
	v := Value{Data: data, Version: Version{Counter: top.Counter + 1, Replica: r}}
	for _, i := range reach {
		c.replicas[i][key] = v
	}
	if c.written != nil {
		c.written[c.side[r-1]][key] = v
	}
	return v, nil
}

// Read returns the value of key as seen through replica r. CP mode reads every
// replica r reaches (at least a quorum, else ErrNoQuorum) and returns the
// newest; AP mode answers from r alone, which may be stale.
func (c *Cluster) Read(r int, key string) (Value, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reach, err := c.reachable(r)
	if err != nil {
		return Value{}, err
	}
	if c.mode == AP {
		reach = []int{r - 1}
	}
	var (
		out   Value
		found bool
	)
	for _, i := range reach {
		if v, ok := c.replicas[i][key]; ok && (!found || out.Version.Less(v.Version)) {
			out, found = v, true
		}
	}
	if !found {
		return Value{}, fmt.Errorf("n%d: %q: %w", r, key, ErrNotFound)
	}
	return out, nil
}

// Snapshot returns what each replica holds for key (index 0 is replica 1), to
// show divergence; ok is false where a replica has never seen the key.
func (c *Cluster) Snapshot(key string) (vals []Value, ok []bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	vals, ok = make([]Value, len(c.replicas)), make([]bool, len(c.replicas))
	for i, rep := range c.replicas {
		vals[i], ok[i] = rep[key]
	}
	return vals, ok
}

// reachable lists the replica indexes on r's side of the partition, or
// ErrNoQuorum when a CP cluster cannot form a majority there. Caller holds mu.
func (c *Cluster) reachable(r int) ([]int, error) {
	if err := c.check(r); err != nil {
		return nil, err
	}
	var reach []int
	for i, s := range c.side {
		if s == c.side[r-1] {
			reach = append(reach, i)
		}
	}
	if c.mode == CP && len(reach) < c.Quorum() {
		return nil, fmt.Errorf("n%d reaches %d of %d replicas, needs %d: %w",
			r, len(reach), len(c.replicas), c.Quorum(), ErrNoQuorum)
	}
	return reach, nil
}

func (c *Cluster) check(r int) error {
	if r < 1 || r > len(c.replicas) {
		return fmt.Errorf("replica %d of %d: %w", r, len(c.replicas), ErrUnknownReplica)
	}
	return nil
}
