package ring

import (
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/gocmd"
)

// articleLayout models the data layout of the article's ring, not its code: a
// sorted slice of points, a map from point to node that a later node
// overwrites when two vnode keys hash alike, and the set of member nodes.
// Removing a node deletes the map entries of its vnode hashes, whoever owns
// them by then, and drops the points left without an entry.
type articleLayout struct {
	hash    Hash
	vnodes  int
	points  []uint32
	owner   map[uint32]string
	members map[string]bool
}

func newArticleLayout(v int, h Hash) *articleLayout {
	return &articleLayout{hash: h, vnodes: v, owner: map[uint32]string{}, members: map[string]bool{}}
}

func (a *articleLayout) add(node string) {
	if a.members[node] {
		return
	}
	a.members[node] = true
	for i := range a.vnodes {
		p := a.hash(node + "#" + strconv.Itoa(i))
		a.points = append(a.points, p)
		a.owner[p] = node // a colliding point changes hands
	}
	slices.Sort(a.points)
}

func (a *articleLayout) remove(node string) {
	if !a.members[node] {
		return
	}
	delete(a.members, node)
	for i := range a.vnodes {
		delete(a.owner, a.hash(node+"#"+strconv.Itoa(i)))
	}
	a.points = slices.DeleteFunc(a.points, func(p uint32) bool { _, ok := a.owner[p]; return !ok })
}

func (a *articleLayout) first(key string) int {
	h := a.hash(key)
	i, _ := slices.BinarySearch(a.points, h)
	if i == len(a.points) {
		i = 0
	}
	return i
}

func (a *articleLayout) getNode(key string) string {
	if len(a.points) == 0 {
		return ""
	}
	return a.owner[a.points[a.first(key)]]
}

// getN walks clockwise collecting distinct owners until it has n, n capped at
// the number of members, as the article's GetN does; unlike it, the walk stops
// after laps full turns and reports whether it had finished.
func (a *articleLayout) getN(key string, n, laps int) (got []string, finished bool) {
	n = min(n, len(a.members))
	if len(a.points) == 0 || n == 0 {
		return nil, true
	}
	i := a.first(key)
	for step := 0; len(got) < n; step++ {
		if step == laps*len(a.points) {
			return got, false
		}
		if o := a.owner[a.points[i]]; !slices.Contains(got, o) {
			got = append(got, o)
		}
		i = (i + 1) % len(a.points)
	}
	return got, true
}

// crc32("node-8755d764#0") == crc32("node-4170cb18#0") == 0x795030b3, found
// by a search over names: at V=1 the two nodes' only points collide.
var collidingPair = []string{"node-8755d764", "node-4170cb18"}

// The article's GetN caps n at the number of member nodes and walks until it
// has n distinct owners. A member whose only point was overwritten owns no
// point, so the walk, periodic over the points, never ends: after 1,000 full
// turns it still has one node of two. Its RLock is held all that time (the
// second half): a writer's Lock then waits, and from that moment every new
// reader (RLock, as GetNode takes it) waits behind the writer.
func TestArticleGetNNeverEndsWhenAPointWasOverwritten(t *testing.T) {
	a := newArticleLayout(1, CRC32)
	for _, n := range collidingPair {
		a.add(n)
	}
	require.Equal(t, uint32(0x795030b3), CRC32(collidingPair[0]+"#0"))
	require.Equal(t, CRC32(collidingPair[0]+"#0"), CRC32(collidingPair[1]+"#0"))
	require.Len(t, a.points, 2, "both points are in the slice")
	require.Len(t, a.owner, 1, "one map entry: the later node took the point")
	got, finished := a.getN("user:1001", 2, 1000)
	assert.False(t, finished, "the walk is periodic: if it has not finished after one turn it never will")
	assert.Equal(t, []string{collidingPair[1]}, got)

	r := build(1, CRC32, collidingPair...)
	assert.ElementsMatch(t, collidingPair, r.GetN("user:1001", 2), "this ring keeps both points")

	// What a GetN spinning under RLock does to the others.
	var mu sync.RWMutex
	mu.RLock() // the spinning GetN
	writer := make(chan struct{})
	added := 0
	go func() { // AddNode
		mu.Lock()
		added++
		mu.Unlock()
		close(writer)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for mu.TryRLock() { // a GetNode gets through until the writer is queued
		mu.RUnlock()
		require.True(t, time.Now().Before(deadline), "the writer never queued")
		time.Sleep(time.Millisecond)
	}
	select {
	case <-writer:
		assert.Fail(t, "the writer got the lock while a reader held it")
	default:
	}
	mu.RUnlock() // only the end of the spinning GetN releases them
	select {
	case <-writer:
		assert.Equal(t, 1, added)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the writer never got the lock")
	}
}

// The article's map from point to node: on a collision the node added later
// owns the point, so the owner of every key in that arc depends on insertion
// order; and removing either node deletes the shared entry, taking the point
// of the node that stays. With the colliding pair at V=1, removing one node
// leaves a ring with a member and no point: every GetNode returns "". This
// ring keeps both points, orders ties by name and serves the remaining node.
func TestArticleCollisionOverwritesAndRemoveTakesTheOthersPoint(t *testing.T) {
	ab, ba := newArticleLayout(1, CRC32), newArticleLayout(1, CRC32)
	ab.add(collidingPair[0])
	ab.add(collidingPair[1])
	ba.add(collidingPair[1])
	ba.add(collidingPair[0])
	assert.NotEqual(t, ab.getNode("user:1001"), ba.getNode("user:1001"), "the owner depends on the order of AddNode")

	ab.remove(collidingPair[1])
	assert.True(t, ab.members[collidingPair[0]], "still a member")
	assert.Empty(t, ab.points, "but its point went with the other node's")
	assert.Empty(t, ab.getNode("user:1001"))

	x, y := build(1, CRC32, collidingPair...), build(1, CRC32, collidingPair[1], collidingPair[0])
	assert.Equal(t, x.GetNode("user:1001"), y.GetNode("user:1001"), "order-independent")
	x.RemoveNode(collidingPair[1])
	assert.Equal(t, collidingPair[0], x.GetNode("user:1001"))
	assert.Equal(t, 1, x.Points())
}

// The article's hash-ring diagram: nodes at 1,200,000, 2,800,000 and
// 3,700,000 on a ring of 2^32 positions, keys at 1,500,000 (→ Node-B),
// 3,200,000 (→ Node-C) and 4,000,000 (→ Node-A, wrapping), and Node-D
// inserted at 2,000,000 taking (1,200,000, 2,000,000] from Node-B. Placed on
// this ring with a hash that puts each name where the diagram draws it, every
// lookup lands as drawn. The positions all sit in the first 0.09% of the ring,
// so as drawn Node-A owns the arc from 3,700,000 round to 1,200,000: 99.94% of
// the ring, which 100,000 well-mixed keys confirm.
func TestArticleRingDiagram(t *testing.T) {
	at := map[string]uint32{
		"Node-A#0": 1_200_000, "Node-B#0": 2_800_000, "Node-C#0": 3_700_000, "Node-D#0": 2_000_000,
		"user:123": 1_500_000, "product:456": 3_200_000, "order:789": 4_000_000,
		"just-past-A": 1_200_001, "at-D": 2_000_000, "just-past-D": 2_000_001,
	}
	h := func(s string) uint32 {
		if p, ok := at[s]; ok {
			return p
		}
		return XXHash(s)
	}
	r := build(1, h, "Node-A", "Node-B", "Node-C")
	assert.Equal(t, "Node-B", r.GetNode("user:123"))
	assert.Equal(t, "Node-C", r.GetNode("product:456"))
	assert.Equal(t, "Node-A", r.GetNode("order:789"), "wraps around")

	share := map[string]int{}
	for _, k := range keys(100_000) {
		share[r.GetNode(k)]++
	}
	t.Logf("shares as drawn: %v of 100000", share)
	assert.Greater(t, share["Node-A"], 99_800)

	r.AddNode("Node-D")
	for k, want := range map[string]string{"just-past-A": "Node-D", "at-D": "Node-D", "just-past-D": "Node-B", "user:123": "Node-D", "product:456": "Node-C", "order:789": "Node-A"} {
		assert.Equal(t, want, r.GetNode(k), k)
	}
}

// The article's BenchmarkLoadDistribution takes a *testing.T. go test does not
// skip such a function: it refuses the package before building it, so not one
// of its tests runs. testdata/wrongsignature has that shape (a benchmark with a
// *testing.T beside an ordinary test); this runs go test and go vet on a copy.
func TestArticleBenchmarkWithTestingTStopsThePackage(t *testing.T) {
	dir := gocmd.Module(t, filepath.Join("testdata", "wrongsignature"), "example.com/wrongsignature")
	run := func(args ...string) (string, error) { return gocmd.Run(t, dir, args...) }
	out, err := run("test", "-count=1", "-v", ".")
	t.Logf("go test:\n%s", out)
	require.Error(t, err)
	assert.Contains(t, out, "wrong signature for BenchmarkSpread, must be: func BenchmarkSpread(b *testing.B)")
	assert.Contains(t, out, "[setup failed]")
	assert.NotContains(t, out, "=== RUN", "no test ran, not even the ordinary one")
	out, err = run("vet", ".")
	require.Error(t, err)
	assert.Contains(t, out, "wrong signature for BenchmarkSpread")
}

// The rings of the article's benchmark (node-a…node-e, V = 1, 10, 100, 200,
// CRC32, keys key:0…key:99999) have no colliding points, so its map loses
// none, this ring with WithHash(CRC32) places every key as its layout does,
// and every node gets keys, so its std-dev loop over the map of counts misses
// no node: it prints what measure.RingSpread computes.
func TestArticleBenchmarkRingsHaveNoCollisions(t *testing.T) {
	nodes := []string{"node-a", "node-b", "node-c", "node-d", "node-e"}
	ks := make([]string, 100_000)
	for i := range ks {
		ks[i] = "key:" + strconv.Itoa(i)
	}
	for _, v := range []int{1, 10, 100, 200} {
		a := newArticleLayout(v, CRC32)
		r := New(v, WithHash(CRC32))
		for _, n := range nodes {
			a.add(n)
			r.AddNode(n)
		}
		require.Len(t, a.owner, len(a.points), "V=%d: a collision", v)
		count := map[string]int{}
		for _, k := range ks {
			got := r.GetNode(k)
			require.Equal(t, a.getNode(k), got, "V=%d, %s", v, k)
			count[got]++
		}
		assert.Len(t, count, len(nodes), "V=%d: a node with no key", v)
	}
}
