package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func backends(weights ...int) []*Backend {
	out := make([]*Backend, len(weights))
	for i, w := range weights {
		out[i] = NewBackend(fmt.Sprintf("b%d", i+1), fmt.Sprintf("10.0.0.%d:80", i+1), w)
	}
	return out
}

func newPool(t *testing.T, algo Algorithm, bs ...*Backend) *Pool {
	t.Helper()
	p, err := NewPool(algo, bs...)
	require.NoError(t, err)
	return p
}

// counts picks n times (sequentially, nothing in flight) and counts per name.
func counts(t *testing.T, p *Pool, n int, key func(i int) string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for i := range n {
		k := ""
		if key != nil {
			k = key(i)
		}
		b, err := p.Pick(k)
		require.NoError(t, err)
		out[b.Name]++
	}
	return out
}

func TestNewPoolRejectsBadBackends(t *testing.T) {
	for _, tt := range []struct {
		name string
		bs   []*Backend
		want string
	}{
		{"none", nil, "no backends"},
		{"unnamed", []*Backend{NewBackend("", "x:1", 1)}, "has no name"},
		{"twice", []*Backend{NewBackend("a", "x:1", 1), NewBackend("a", "x:2", 1)}, `"a" used twice`},
		{"weight 0", []*Backend{NewBackend("a", "x:1", 0)}, "weight 0"},
	} {
		_, err := NewPool(new(RoundRobin), tt.bs...)
		assert.ErrorContains(t, err, tt.want, tt.name)
	}
	_, err := NewPool(nil, backends(1)...)
	assert.ErrorContains(t, err, "nil algorithm")
}

// Fairness, sequentially: round robin, least connections (ties rotate) and
// smooth WRR with equal weights give every backend exactly its share; P2C
// with nothing in flight is a uniform choice, within 5 standard deviations.
func TestDistributionIsFair(t *testing.T) {
	const n = 12_000
	for _, tt := range []struct {
		name  string
		algo  Algorithm
		exact bool
	}{
		{"round robin", new(RoundRobin), true},
		{"smooth weighted, equal weights", new(SmoothWeighted), true},
		{"least connections", new(LeastConn), true},
		{"P2C", NewP2C(rand.New(rand.NewPCG(1, 2))), false},
		{"P2C, runtime source", NewP2C(nil), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := counts(t, newPool(t, tt.algo, backends(1, 1, 1, 1)...), n, nil)
			require.Len(t, got, 4)
			sd := math.Sqrt(n * 0.25 * 0.75) // binomial
			for name, c := range got {
				if tt.exact {
					assert.Equal(t, n/4, c, name)
				} else {
					assert.InDelta(t, n/4, c, 5*sd, name)
				}
			}
		})
	}
}

// Under concurrent picks round robin still hands out exact shares: the
// counter is one atomic add.
func TestRoundRobinIsExactUnderConcurrency(t *testing.T) {
	p := newPool(t, new(RoundRobin), backends(1, 1, 1)...)
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			local := map[string]int{}
			for range 3000 {
				b, err := p.Pick("")
				if !assert.NoError(t, err) {
					return
				}
				local[b.Name]++
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range local {
				got[k] += v
			}
		})
	}
	wg.Wait()
	assert.Equal(t, map[string]int{"b1": 8000, "b2": 8000, "b3": 8000}, got)
}

// nginx's documented example: weights 5, 1, 1 give a a b a c a a, and
// any weights are honoured exactly over one cycle.
func TestSmoothWeighted(t *testing.T) {
	bs := backends(5, 1, 1)
	bs[0].Name, bs[1].Name, bs[2].Name = "a", "b", "c"
	p := newPool(t, new(SmoothWeighted), bs...)
	var seq []string
	for range 7 {
		b, err := p.Pick("")
		require.NoError(t, err)
		seq = append(seq, b.Name)
	}
	assert.Equal(t, "a a b a c a a", strings.Join(seq, " "))

	got := counts(t, newPool(t, new(SmoothWeighted), backends(3, 2, 1, 4)...), 10*1000, nil)
	assert.Equal(t, map[string]int{"b1": 3000, "b2": 2000, "b3": 1000, "b4": 4000}, got)
}

// Least connections and P2C follow load: with requests held open, new picks
// avoid the busy backend, and weights scale what "busy" means.
func TestLoadAwareAlgorithmsAvoidTheBusyBackend(t *testing.T) {
	for _, algo := range []Algorithm{new(LeastConn), NewP2C(rand.New(rand.NewPCG(3, 4)))} {
		bs := backends(1, 1)
		p := newPool(t, algo, bs...)
		for range 5 {
			bs[0].Begin()
		}
		got := counts(t, p, 100, nil)
		assert.Equal(t, 100, got["b2"], "%T: b1 has 5 in flight, b2 none", algo)
		for range 5 {
			bs[0].Done()
		}
	}
	// Weighted least connections: b1 has 4 in flight at weight 4 (1 per
	// unit), b2 has 2 at weight 1 (2 per unit): b1 is less loaded.
	bs := backends(4, 1)
	p := newPool(t, new(LeastConn), bs...)
	for range 4 {
		bs[0].Begin()
	}
	bs[1].Begin()
	bs[1].Begin()
	b, err := p.Pick("")
	require.NoError(t, err)
	assert.Equal(t, "b1", b.Name)
}

// The article's failure mode of least connections, "new node flooded
// (connection count = 0)": with long-lived connections open on the old
// backends, every new connection goes to the new one until it catches up.
// P2C spreads them: the new backend is in half of its samples.
func TestLeastConnFloodsANewBackend(t *testing.T) {
	run := func(algo Algorithm) int {
		bs := backends(1, 1, 1, 1)
		for _, b := range bs[:3] {
			for range 100 {
				b.Begin() // long-lived connections (websockets, gRPC streams)
			}
		}
		p := newPool(t, algo, bs...)
		toNew := 0
		for range 100 {
			b, err := p.Pick("")
			require.NoError(t, err)
			b.Begin() // the new connection stays open too
			if b == bs[3] {
				toNew++
			}
		}
		return toNew
	}
	assert.Equal(t, 100, run(new(LeastConn)), "least connections: all 100 new connections on the new backend")
	// P2C picks the new backend whenever it is one of the two samples: 3 of
	// the 6 pairs of 4 backends, so half the time (binomial, ±5 sd).
	assert.InDelta(t, 50, run(NewP2C(rand.New(rand.NewPCG(5, 6)))), 25, "P2C: about half")
}

func TestPickSkipsEjectedAndTriedBackends(t *testing.T) {
	bs := backends(1, 1, 1)
	p := newPool(t, new(RoundRobin), bs...)
	assert.True(t, p.SetHealthy(bs[1], false))
	assert.False(t, p.SetHealthy(bs[1], false), "already ejected")
	assert.Equal(t, []*Backend{bs[0], bs[2]}, p.Healthy())
	assert.Equal(t, map[string]int{"b1": 50, "b3": 50}, counts(t, p, 100, nil))
	for range 10 {
		b, err := p.Pick("", bs[0])
		require.NoError(t, err)
		assert.Equal(t, bs[2], b, "b1 was tried, b2 is ejected")
	}
	_, err := p.Pick("", bs[0], bs[2])
	assert.ErrorIs(t, err, ErrNoBackend)
	assert.True(t, p.SetHealthy(bs[1], true))
	assert.Len(t, p.Healthy(), 3)
	b, ok := p.Backend("b2")
	assert.True(t, ok)
	assert.Same(t, bs[1], b)
	_, ok = p.Backend("nope")
	assert.False(t, ok)
}

// Health changes race with picks; -race checks the pool's snapshot scheme.
func TestPickDuringHealthChanges(t *testing.T) {
	bs := backends(1, 1, 1)
	p := newPool(t, new(LeastConn), bs...)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p.SetHealthy(bs[i%3], i%2 == 0)
		}
	})
	for range 20_000 {
		b, err := p.Pick("")
		if err == nil {
			b.Begin()
			b.Done()
		}
	}
	close(stop)
	wg.Wait()
}
