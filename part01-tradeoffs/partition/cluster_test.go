package partition

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newCluster(t *testing.T, mode Mode, n int) *Cluster {
	t.Helper()
	c, err := New(mode, n)
	require.NoError(t, err)
	return c
}

func mustWrite(t *testing.T, c *Cluster, r int, key, data string) Value {
	t.Helper()
	v, err := c.Write(r, key, data)
	require.NoError(t, err, "write %s=%s via n%d", key, data, r)
	return v
}

func mustRead(t *testing.T, c *Cluster, r int, key string) Value {
	t.Helper()
	v, err := c.Read(r, key)
	require.NoError(t, err, "read %s via n%d", key, r)
	return v
}

// data lists what each replica holds for key.
func data(c *Cluster, key string) []string {
	vals, _ := c.Snapshot(key)
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v.Data
	}
	return out
}

// The Gilbert–Lynch scenario with two replicas: G1 = {n1}, G2 = {n2}.

func TestCPRefusesBothSidesOfATwoReplicaPartition(t *testing.T) {
	t.Parallel()
	c := newCluster(t, CP, 2)
	mustWrite(t, c, 1, "x", "v0")
	require.Equal(t, "v0", mustRead(t, c, 2, "x").Data, "before the partition")

	require.NoError(t, c.Partition(1))
	_, err := c.Write(1, "x", "v1")
	assert.ErrorIs(t, err, ErrNoQuorum, "write in G1 during the partition")
	_, err = c.Read(2, "x")
	assert.ErrorIs(t, err, ErrNoQuorum, "read in G2 during the partition")
	assert.Equal(t, []string{"v0", "v0"}, data(c, "x"), "a refused write leaves no trace")

	assert.Empty(t, c.Heal())
	mustWrite(t, c, 1, "x", "v1")
	assert.Equal(t, "v1", mustRead(t, c, 2, "x").Data, "after healing")
}

func TestCPMajoritySideKeepsServing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, CP, 3)
	mustWrite(t, c, 1, "x", "v0")
	require.NoError(t, c.Partition(3)) // G1 = {n3} is the minority
	mustWrite(t, c, 1, "x", "v1")
	assert.Equal(t, "v1", mustRead(t, c, 2, "x").Data, "majority read")
	_, err := c.Read(3, "x")
	assert.ErrorIs(t, err, ErrNoQuorum, "minority read (it would be stale)")
	_, err = c.Write(3, "x", "v2")
	assert.ErrorIs(t, err, ErrNoQuorum, "minority write")
	// n3 really is behind: that is the stale answer CP refused to give.
	require.Equal(t, []string{"v1", "v1", "v0"}, data(c, "x"))
	assert.Empty(t, c.Heal(), "the minority never wrote")
	assert.Equal(t, []string{"v1", "v1", "v1"}, data(c, "x"), "anti-entropy after the heal")
}

func TestAPServesStaleDataThenConvergesWithLWW(t *testing.T) {
	t.Parallel()
	c := newCluster(t, AP, 2)
	mustWrite(t, c, 1, "x", "v0")
	require.NoError(t, c.Partition(1))

	w1 := mustWrite(t, c, 1, "x", "v1") // the write reaches G1 only
	stale := mustRead(t, c, 2, "x")     // the read reaches G2
	require.Equal(t, "v0", stale.Data, "G2 serves the stale value")
	require.True(t, stale.Version.Less(w1.Version))
	w2 := mustWrite(t, c, 2, "x", "v2") // a concurrent write on the other side
	require.Equal(t, w1.Version.Counter, w2.Version.Counter, "the test expects a tie broken by replica")
	require.False(t, w1.Clock.SeenBy(w2.Clock) || w2.Clock.SeenBy(w1.Clock), "concurrent writes: neither clock has seen the other")

	conflicts := c.Heal()
	require.Len(t, conflicts, 1)
	cf := conflicts[0]
	// Stated rule: the higher counter wins, ties go to the higher replica number.
	assert.Equal(t, "x", cf.Key)
	assert.Equal(t, w2.Version, cf.Kept.Version)
	require.Len(t, cf.Lost, 1)
	assert.Equal(t, w1, cf.Lost[0])
	for r := 1; r <= 2; r++ {
		assert.Equal(t, cf.Kept, mustRead(t, c, r, "x"), "n%d after the heal", r)
	}
	assert.True(t, w1.Clock.SeenBy(cf.Kept.Clock), "the kept value has seen the one it replaced")
	// A write after the heal supersedes the winner everywhere.
	w3 := mustWrite(t, c, 1, "x", "v3")
	assert.True(t, cf.Kept.Version.Less(w3.Version))
	assert.Equal(t, "v3", mustRead(t, c, 2, "x").Data)
}

func TestAPHigherCounterBeatsReplicaNumber(t *testing.T) {
	t.Parallel()
	c := newCluster(t, AP, 2)
	require.NoError(t, c.Partition(1))
	mustWrite(t, c, 2, "x", "a") // #1@n2
	mustWrite(t, c, 1, "x", "b") // #1@n1, overwritten by c on its own side
	mustWrite(t, c, 1, "x", "c") // #2@n1: n1 wrote more often, so it wins
	conflicts := c.Heal()
	require.Len(t, conflicts, 1)
	assert.Equal(t, "c", conflicts[0].Kept.Data)
	require.Len(t, conflicts[0].Lost, 1, "b was overwritten by c, not lost")
	assert.Equal(t, "a", conflicts[0].Lost[0].Data)
	assert.Equal(t, []string{"c", "c"}, data(c, "x"))
}

func TestAPKeysWrittenOnOneSideOnlyAreNotConflicts(t *testing.T) {
	t.Parallel()
	c := newCluster(t, AP, 2)
	require.NoError(t, c.Partition(2))
	mustWrite(t, c, 1, "a", "1")
	mustWrite(t, c, 2, "b", "2")
	_, err := c.Read(2, "a")
	assert.ErrorIs(t, err, ErrNotFound, "n2 reads a key only G1 has")
	assert.Empty(t, c.Heal())
	assert.Equal(t, "1", mustRead(t, c, 2, "a").Data, "heal copies one-sided writes across")
	assert.Equal(t, "2", mustRead(t, c, 1, "b").Data, "heal copies one-sided writes across")
}

// A second split of an already split cluster must not hide a lost update.
func TestRepartitionAPReportsTheLostWrite(t *testing.T) {
	t.Parallel()
	c, err := New(AP, 2)
	require.NoError(t, err)
	require.NoError(t, c.Partition(1))
	a, err := c.Write(1, "k", "a")
	require.NoError(t, err)
	require.NoError(t, c.Partition(2))
	_, err = c.Write(2, "k", "b")
	require.NoError(t, err)
	conflicts := c.Heal()
	require.Len(t, conflicts, 1, "a and b were written concurrently; LWW drops one")
	assert.Equal(t, "b", conflicts[0].Kept.Data)
	require.Len(t, conflicts[0].Lost, 1)
	assert.Equal(t, a.Version, conflicts[0].Lost[0].Version)
}

// A write that saw the other side's write overwrote it causally: not a conflict.
func TestRepartitionCPReportsNoCausalOverwrite(t *testing.T) {
	t.Parallel()
	c, err := New(CP, 3)
	require.NoError(t, err)
	require.NoError(t, c.Partition(1))
	_, err = c.Write(2, "k", "x")
	require.NoError(t, err)
	require.NoError(t, c.Partition(2, 3))
	_, err = c.Write(3, "k", "y")
	require.NoError(t, err)
	assert.Empty(t, c.Heal(), "y was written after x on the same replicas")
}

// A value that lost at one heal is not reported again at the next, and the
// winner's merged clock keeps later writes ordered after it.
func TestLostWritesAreReportedOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t, AP, 2)
	require.NoError(t, c.Partition(1))
	mustWrite(t, c, 1, "x", "a")
	mustWrite(t, c, 2, "x", "b")
	require.Len(t, c.Heal(), 1)
	require.NoError(t, c.Partition(1))
	mustWrite(t, c, 1, "x", "c")
	assert.Empty(t, c.Heal(), "only one side wrote in the second partition")
	assert.Equal(t, []string{"c", "c"}, data(c, "x"))
}

func TestErrors(t *testing.T) {
	t.Parallel()
	_, err := New(Mode(9), 2)
	assert.Error(t, err, "unknown mode")
	_, err = New(CP, 0)
	assert.Error(t, err, "zero replicas")
	c := newCluster(t, CP, 2)
	_, err = c.Write(3, "x", "v")
	assert.ErrorIs(t, err, ErrUnknownReplica)
	assert.ErrorIs(t, c.Partition(0), ErrUnknownReplica)
	for _, g1 := range [][]int{{}, {1, 2}, {1, 1, 2}} {
		assert.Error(t, c.Partition(g1...), "Partition(%v) of 2 replicas leaves one side empty", g1)
	}
	_, err = c.Read(1, "missing")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.False(t, c.Partitioned(), "a failed Partition changes nothing")
	require.NoError(t, c.Partition(2))
	assert.True(t, c.Partitioned())
	c.Heal()
	assert.False(t, c.Partitioned())
}

func TestValuesShareNothingWithTheCluster(t *testing.T) {
	t.Parallel()
	c := newCluster(t, AP, 2)
	mustWrite(t, c, 1, "x", "v").Clock[0] = 97
	mustRead(t, c, 1, "x").Clock[0] = 98
	vals, _ := c.Snapshot("x")
	vals[0].Clock[0] = 99
	again, _ := c.Snapshot("x")
	assert.Equal(t, Clock{1, 0}, again[0].Clock)
}

// hammer runs op from four goroutines, 100 times each, with a replica number
// that rotates over three: something for the race detector to look at.
func hammer(op func(g, i, r int)) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				op(g, i, 1+(g+i)%3)
			}
		})
	}
	wg.Wait()
}

// TestConcurrentUse lets the race detector look at every public method.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	for _, mode := range []Mode{CP, AP} {
		c := newCluster(t, mode, 3)
		hammer(func(g, i, r int) {
			_, _ = c.Write(r, "k", fmt.Sprint(g, i))
			_, _ = c.Read(r, "k")
			if i%10 == 0 {
				_ = c.Partition(r)
			}
			if i%10 == 5 {
				c.Heal()
			}
		})
		c.Heal()
		vals, ok := c.Snapshot("k")
		for i := range vals {
			assert.True(t, ok[i])
			assert.Equal(t, vals[0], vals[i], "%v: replicas diverged after the final heal", mode)
		}
	}
}
