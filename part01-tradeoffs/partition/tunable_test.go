package partition

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var levels = []Level{One, Quorum, All}

func TestLevelOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		l       Level
		n, want int
	}{
		{One, 3, 1}, {Quorum, 3, 2}, {All, 3, 3},
		{One, 5, 1}, {Quorum, 5, 3}, {All, 5, 5},
		{Quorum, 2, 2}, {Quorum, 4, 3}, {Quorum, 1, 1},
	} {
		assert.Equal(t, tt.want, tt.l.Of(tt.n), "%v of %d", tt.l, tt.n)
	}
	assert.Panics(t, func() { Level(0).Of(3) })
	assert.Equal(t, "QUORUM", Quorum.String())
	assert.Equal(t, "Level(7)", Level(7).String())
}

func newTunable(t *testing.T, n int) *Tunable {
	t.Helper()
	c, err := NewTunable(n, 1)
	require.NoError(t, err)
	return c
}

// held lists what each replica holds for key.
func (c *Tunable) held(key string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.replicas))
	for i, rep := range c.replicas {
		out[i] = rep[key].Data
	}
	return out
}

func TestWriteAppliesToWReplicasAndQueuesTheRest(t *testing.T) {
	t.Parallel()
	for _, w := range levels {
		t.Run(w.String(), func(t *testing.T) {
			c := newTunable(t, 3)
			_, err := c.Write(2, "k", "v", w)
			require.NoError(t, err)
			have := 0
			for _, d := range c.held("k") {
				if d == "v" {
					have++
				}
			}
			assert.Equal(t, w.Of(3), have, "replicas holding the write when it is acknowledged")
			assert.Equal(t, 3-w.Of(3), c.Deliver(1), "the rest are pending")
			assert.Equal(t, []string{"v", "v", "v"}, c.held("k"))
		})
	}
}

func TestUnavailableWritesNothing(t *testing.T) {
	t.Parallel()
	c := newTunable(t, 3)
	require.NoError(t, c.Partition(1))
	_, err := c.Write(2, "k", "v", All)
	require.ErrorIs(t, err, ErrUnavailable, "ALL with one replica cut off")
	_, err = c.Write(1, "k", "v", Quorum)
	require.ErrorIs(t, err, ErrUnavailable, "QUORUM on the minority side")
	_, err = c.Read(1, "k", Quorum)
	require.ErrorIs(t, err, ErrUnavailable)
	c.Heal()
	assert.Equal(t, []string{"", "", ""}, c.held("k"))
	_, err = c.Read(1, "k", All)
	assert.ErrorIs(t, err, ErrNotFound)
}

// Copies to a replica across the partition wait as hints: Deliver cannot land
// them, Heal does.
func TestHintsWaitForTheHeal(t *testing.T) {
	t.Parallel()
	c := newTunable(t, 3)
	require.NoError(t, c.Partition(3))
	_, err := c.Write(1, "k", "v", Quorum)
	require.NoError(t, err)
	c.Deliver(1)
	assert.Equal(t, []string{"v", "v", ""}, c.held("k"))
	c.Heal()
	assert.Equal(t, []string{"v", "v", "v"}, c.held("k"))
}

// A late copy of an older write must not overwrite a newer value.
func TestLateCopiesLoseToNewerValues(t *testing.T) {
	t.Parallel()
	c := newTunable(t, 3)
	_, err := c.Write(1, "k", "old", One)
	require.NoError(t, err)
	_, err = c.Write(1, "k", "new", All)
	require.NoError(t, err)
	c.Heal()
	assert.Equal(t, []string{"new", "new", "new"}, c.held("k"))
}

// TestOverlappingLevelsNeverReadStale is R + W > N measured: over thousands of
// random operations with replication lag, every pair of levels whose sets must
// overlap returns the latest acknowledged write on every read, and every pair
// that may miss it does miss it.
func TestOverlappingLevelsNeverReadStale(t *testing.T) {
	t.Parallel()
	for _, n := range []int{3, 5} {
		for _, w := range levels {
			for _, r := range levels {
				t.Run(fmt.Sprintf("N=%d/W=%v/R=%v", n, w, r), func(t *testing.T) {
					c, err := NewTunable(n, 7)
					require.NoError(t, err)
					tally, err := Workload{Ops: 5000, Keys: 8, Writes: 0.5, Lag: 0.2, Seed: 7}.Run(c, w, r)
					require.NoError(t, err)
					assert.Zero(t, tally.RefusedReads+tally.RefusedWrites, "healthy cluster")
					if Overlaps(w, r, n) {
						assert.Zero(t, tally.StaleReads, "R+W > N")
					} else {
						assert.Positive(t, tally.StaleReads, "R+W ≤ N: a read can miss every replica that has the write")
					}
				})
			}
		}
	}
}

// Under a partition {n1} | {n2,n3} the levels trade availability for
// consistency the way the article lists them.
func TestLevelsUnderPartition(t *testing.T) {
	t.Parallel()
	run := func(w, r Level) Tally {
		c := newTunable(t, 3)
		tally, err := Workload{Ops: 3000, Keys: 8, Writes: 0.5, Lag: 0.2, Partition: []int{1}, Seed: 3}.Run(c, w, r)
		require.NoError(t, err)
		return tally
	}
	one := run(One, One)
	assert.Zero(t, one.RefusedReads+one.RefusedWrites, "ONE answers on both sides")
	assert.Positive(t, one.StaleReads, "…and the minority side serves stale data")

	q := run(Quorum, Quorum)
	assert.Zero(t, q.StaleReads, "QUORUM never reads stale")
	assert.Positive(t, q.RefusedReads, "…and refuses on the minority side")
	assert.Less(t, q.RefusedReads, q.Reads/2, "…but serves the majority side")

	all := run(All, All)
	assert.Equal(t, all.Writes, all.RefusedWrites, "ALL refuses every write while a replica is unreachable")
	assert.Equal(t, all.Reads, all.RefusedReads)
}

func TestTunableConcurrentUse(t *testing.T) {
	t.Parallel()
	c := newTunable(t, 3)
	hammer(func(g, i, r int) {
		_, _ = c.Write(r, "k", fmt.Sprint(g, i), levels[i%3])
		_, _ = c.Read(r, "k", levels[(i+1)%3])
		c.Deliver(0.5)
		if i%10 == 0 {
			_ = c.Partition(r)
		}
		if i%10 == 5 {
			c.Heal()
		}
	})
	c.Heal()
	held := c.held("k")
	assert.Equal(t, []string{held[0], held[0], held[0]}, held, "replicas converge after the final heal")
}
