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
	"slices"
	"strings"
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

// String prints "CP" or "AP".
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

// Clock is a version vector, the causal history of a value: Clock[i] counts the
// writes through replica i+1 it has seen, its own included. Version says which
// value LWW keeps; Clock says whether the value it drops was seen by the winner
// (a causal overwrite, like any later write) or written concurrently with it (a
// lost update). Lamport counters cannot tell those two apart.
type Clock []uint64

// SeenBy reports whether every write c has seen, w has seen too: the value with
// clock c is in the causal past of the one with clock w.
func (c Clock) SeenBy(w Clock) bool {
	for i, n := range c {
		if i >= len(w) || n > w[i] {
			return false
		}
	}
	return true
}

// merge raises c to the entry-wise maximum of c and w.
func (c Clock) merge(w Clock) {
	for i := range c {
		c[i] = max(c[i], w[i])
	}
}

// Value is a stored datum with the version that wrote it.
type Value struct {
	Data    string
	Version Version
	Clock   Clock
}

// clone returns v with its own copy of the Clock: callers never share the
// cluster's.
func (v Value) clone() Value {
	v.Clock = slices.Clone(v.Clock)
	return v
}

// Conflict is a key whose replicas held writes that did not see each other
// when the partition healed. Heal keeps the value with the higher Version and
// discards the others: the lost updates of LWW. A write that a later write had
// already seen is overwritten, not lost, and is not listed.
type Conflict struct {
	Key  string
	Kept Value
	Lost []Value
}

// Cluster is a replicated key-value register with a switchable partition. It
// is safe for concurrent use. Replicas are numbered 1..n.
//
// A write copies its value to every replica its coordinator reaches, and its
// Clock merges theirs, so a replica only ever replaces a value by one that has
// seen it. Whatever a partition (or a sequence of them) did, every write LWW
// can lose is therefore still on some replica when Heal runs, and Heal finds
// the lost ones by comparing clocks: no bookkeeping per side, which a second
// split would relabel.
type Cluster struct {
	mu       sync.Mutex
	mode     Mode
	replicas []map[string]Value // index 0 is replica 1
	net      network
}

// New returns a healed cluster of n replicas in the given mode.
func New(mode Mode, n int) (*Cluster, error) {
	if mode != CP && mode != AP {
		return nil, fmt.Errorf("unknown mode %v", mode)
	}
	if n < 1 {
		return nil, fmt.Errorf("need at least 1 replica, got %d", n)
	}
	c := &Cluster{mode: mode, replicas: make([]map[string]Value, n), net: make(network, n)}
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
	return c.net.split(g1)
}

// Partitioned reports whether a partition is in force.
func (c *Cluster) Partitioned() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.net.partitioned()
}

// Heal reconnects every replica and runs anti-entropy: each key converges to
// its highest Version on all replicas, with a Clock that has seen every value
// it replaced. It returns, sorted by key, the keys where that dropped a value
// that neither the winner nor any later write had seen.
func (c *Cluster) Heal() []Conflict {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.net.heal()
	present := map[string][]Value{} // distinct values per key, one per Version
	for _, rep := range c.replicas {
		for k, v := range rep {
			if !slices.ContainsFunc(present[k], func(p Value) bool { return p.Version == v.Version }) {
				present[k] = append(present[k], v)
			}
		}
	}
	var conflicts []Conflict
	for k, vals := range present {
		slices.SortFunc(vals, func(a, b Value) int { return cmpVersion(a.Version, b.Version) })
		kept := vals[len(vals)-1]
		var lost []Value
		merged := slices.Clone(kept.Clock)
		for i, v := range vals[:len(vals)-1] {
			// A replica cut off early can still hold a value that a later
			// write elsewhere has seen: that one was overwritten, not lost.
			seen := slices.ContainsFunc(vals[i+1:], func(u Value) bool { return v.Clock.SeenBy(u.Clock) })
			if !seen {
				lost = append(lost, v)
			}
			merged.merge(v.Clock)
		}
		kept.Clock = merged
		for _, rep := range c.replicas {
			rep[k] = kept
		}
		if len(lost) > 0 {
			conflicts = append(conflicts, Conflict{Key: k, Kept: kept.clone(), Lost: lost})
		}
	}
	slices.SortFunc(conflicts, func(a, b Conflict) int { return strings.Compare(a.Key, b.Key) })
	return conflicts
}

func cmpVersion(a, b Version) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
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
	seen := make(Clock, len(c.replicas))
	for _, i := range reach {
		if v, ok := c.replicas[i][key]; ok {
			top = maxVersion(top, v.Version)
			seen.merge(v.Clock)
		}
	}
	seen[r-1]++
	v := Value{Data: data, Version: Version{Counter: top.Counter + 1, Replica: r}, Clock: seen}
	for _, i := range reach {
		c.replicas[i][key] = v
	}
	return v.clone(), nil
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
	return out.clone(), nil
}

// Snapshot returns what each replica holds for key (index 0 is replica 1), to
// show divergence; ok is false where a replica has never seen the key. The
// values share nothing with the cluster.
func (c *Cluster) Snapshot(key string) (vals []Value, ok []bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	vals, ok = make([]Value, len(c.replicas)), make([]bool, len(c.replicas))
	for i, rep := range c.replicas {
		vals[i], ok[i] = rep[key]
		vals[i] = vals[i].clone()
	}
	return vals, ok
}

// reachable lists the replica indexes on r's side of the partition, or
// ErrNoQuorum when a CP cluster cannot form a majority there. Caller holds mu.
func (c *Cluster) reachable(r int) ([]int, error) {
	reach, err := c.net.reach(r)
	if err != nil {
		return nil, err
	}
	if c.mode == CP && len(reach) < c.Quorum() {
		return nil, fmt.Errorf("n%d reaches %d of %d replicas, needs %d: %w",
			r, len(reach), len(c.replicas), c.Quorum(), ErrNoQuorum)
	}
	return reach, nil
}

func maxVersion(a, b Version) Version {
	if a.Less(b) {
		return b
	}
	return a
}
