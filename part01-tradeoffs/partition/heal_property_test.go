package partition

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// oracle replays a Cluster's operations with explicit causal histories (the set
// of writes each value has seen) instead of the version vectors Cluster uses,
// so it can judge Heal's conflict report independently: a write is lost when
// the value every replica keeps has not seen it and no later write has either.
type oracle struct {
	mode    Mode
	side    []int
	rep     []map[string]int // replica → key → id of the write it holds
	hist    []map[int]bool   // id → ids of the writes in its causal past, itself included
	version []Version        // id → the Version Cluster gave it
	epoch   map[string][]int // key → ids written since the last heal
}

func newOracle(mode Mode, n int) *oracle {
	o := &oracle{mode: mode, side: make([]int, n), rep: make([]map[string]int, n),
		hist: []map[int]bool{nil}, version: []Version{{}}, epoch: map[string][]int{}}
	for i := range o.rep {
		o.rep[i] = map[string]int{}
	}
	return o
}

func (o *oracle) reach(r int) []int {
	var out []int
	for i, s := range o.side {
		if s == o.side[r-1] {
			out = append(out, i)
		}
	}
	if o.mode == CP && len(out) < len(o.side)/2+1 {
		return nil
	}
	return out
}

// write records a write through r; ok says whether the oracle expects it to
// succeed. The caller passes the Version Cluster returned.
func (o *oracle) write(r int, key string, v Version) (id int) {
	id = len(o.hist)
	h := map[int]bool{id: true}
	for _, i := range o.reach(r) {
		for past := range o.hist[o.rep[i][key]] {
			h[past] = true
		}
		o.rep[i][key] = id
	}
	o.hist, o.version = append(o.hist, h), append(o.version, v)
	o.epoch[key] = append(o.epoch[key], id)
	return id
}

// lost returns, for key, the ids written since the last heal that the value
// kept has not seen and that no later write saw either, sorted by Version.
func (o *oracle) lost(key string, kept int) []Version {
	var out []Version
	for _, w := range o.epoch[key] {
		if o.hist[kept][w] {
			continue
		}
		overwritten := slices.ContainsFunc(o.epoch[key], func(later int) bool { return later != w && o.hist[later][w] })
		if !overwritten {
			out = append(out, o.version[w])
		}
	}
	slices.SortFunc(out, func(a, b Version) int {
		if a.Less(b) {
			return -1
		}
		return 1
	})
	return out
}

// heal merges every present history into kept's, as anti-entropy does.
func (o *oracle) heal(key string, kept int) {
	for i := range o.rep {
		for past := range o.hist[o.rep[i][key]] {
			o.hist[kept][past] = true
		}
		o.rep[i][key] = kept
	}
}

// checkOps drives a Cluster and the oracle with the same operations, decoded
// from ops, and compares every Heal's report with the oracle's verdict.
func checkOps(t *testing.T, mode Mode, n int, ops []byte) {
	c, err := New(mode, n)
	require.NoError(t, err)
	o := newOracle(mode, n)
	keys := []string{"k", "j"}
	var log []string
	heal := func() {
		log = append(log, "Heal()")
		for i := range o.side {
			o.side[i] = 0
		}
		report := map[string]Conflict{}
		for _, cf := range c.Heal() {
			report[cf.Key] = cf
		}
		for _, key := range keys {
			vals, ok := c.Snapshot(key)
			if !ok[0] {
				require.NotContains(t, report, key)
				continue
			}
			for i := range vals {
				require.Equal(t, vals[0].Data, vals[i].Data, "replicas diverge after %s", strings.Join(log, ", "))
			}
			kept, err := strconv.Atoi(strings.TrimPrefix(vals[0].Data, "w"))
			require.NoError(t, err)
			want := o.lost(key, kept)
			var got []Version
			for _, v := range report[key].Lost {
				got = append(got, v.Version)
			}
			require.Equal(t, want, got, "lost writes of %s after %s", key, strings.Join(log, ", "))
			if mode == CP {
				require.Empty(t, got, "CP lost a write")
			}
			for _, w := range o.epoch[key] { // LWW: the kept value is the highest Version written
				require.False(t, o.version[kept].Less(o.version[w]) && !o.hist[kept][w],
					"kept %v while %v was newer", o.version[kept], o.version[w])
			}
			o.heal(key, kept)
		}
		o.epoch = map[string][]int{}
	}
	for i := 0; i+1 < len(ops); i += 2 {
		op, arg := ops[i]%4, int(ops[i+1])
		switch op {
		case 0: // partition: arg's low n bits pick G1
			var g1 []int
			for r := 1; r <= n; r++ {
				if arg>>(r-1)&1 == 1 {
					g1 = append(g1, r)
				}
			}
			if len(g1) == 0 || len(g1) == n {
				continue
			}
			require.NoError(t, c.Partition(g1...))
			for j := range o.side {
				o.side[j] = 0
			}
			for _, r := range g1 {
				o.side[r-1] = 1
			}
			log = append(log, fmt.Sprintf("Partition%v", g1))
		case 1, 2: // write through replica arg%n+1
			r, key := arg%n+1, keys[arg/n%len(keys)]
			data := fmt.Sprintf("w%d", len(o.hist))
			v, err := c.Write(r, key, data)
			if o.reach(r) == nil {
				require.ErrorIs(t, err, ErrNoQuorum)
				continue
			}
			require.NoError(t, err)
			o.write(r, key, v.Version)
			log = append(log, fmt.Sprintf("Write(%d,%s,%s)", r, key, data))
		case 3:
			heal()
		}
	}
	heal()
}

// TestHealReportsExactlyTheLostWrites runs random partition/write/heal
// sequences in both modes: every write LWW drops is reported, and no write a
// later one had already seen is.
func TestHealReportsExactlyTheLostWrites(t *testing.T) {
	t.Parallel()
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 1))
		ops := make([]byte, 2*(5+rng.IntN(40)))
		for i := range ops {
			ops[i] = byte(rng.UintN(256))
		}
		for _, mode := range []Mode{AP, CP} {
			n := 2 + int(seed%3)
			t.Run(fmt.Sprintf("%v/n=%d/seed=%d", mode, n, seed), func(t *testing.T) { checkOps(t, mode, n, ops) })
		}
	}
}

func FuzzHealReportsExactlyTheLostWrites(f *testing.F) {
	f.Add(byte(0), byte(0), []byte{0, 1, 1, 0, 0, 2, 1, 1, 3, 0})       // the AP repro: Partition(1), Write(1), Partition(2), Write(2), Heal
	f.Add(byte(1), byte(1), []byte{0, 1, 1, 1, 0, 6, 1, 2, 3, 0})       // the CP repro: Partition(1), Write(2), Partition(2,3), Write(3), Heal
	f.Add(byte(1), byte(0), []byte{0, 1, 1, 0, 1, 1, 0, 3, 1, 0, 3, 0}) // three-way history across two splits
	f.Fuzz(func(t *testing.T, n, mode byte, ops []byte) {
		m := []Mode{AP, CP}[mode%2]
		checkOps(t, m, 2+int(n%3), ops)
	})
}
