package sim

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func run(t *testing.T, cfg Config, name string) Result {
	t.Helper()
	for _, a := range Algorithms {
		if a.Name == name {
			r, err := Run(cfg, a)
			require.NoError(t, err)
			return r
		}
	}
	require.FailNow(t, "no algorithm "+name)
	return Result{}
}

// The ordering the chapter claims, on five seeds, with the clock simulated
// so that a loaded machine cannot change it: least connections and P2C
// beat round robin at p99 by a wide margin (at most 75% of its p99), and
// send the slow backend less than its round-robin quarter.
func TestLoadAwareAlgorithmsBeatRoundRobinAtP99(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		cfg := Default
		cfg.Requests, cfg.Seed = 50_000, seed
		rr := run(t, cfg, "round robin")
		assert.InDelta(t, 0.25, rr.Share[3], 1e-9, "round robin ignores speed")
		for _, name := range []string{"least connections", "P2C"} {
			r := run(t, cfg, name)
			assert.Less(t, float64(r.Quantile(0.99)), 0.75*float64(rr.Quantile(0.99)),
				"seed %d: %s p99 %v vs round robin %v", seed, name, r.Quantile(0.99), rr.Quantile(0.99))
			assert.Less(t, r.Share[3], 0.2, "seed %d: %s sends the slow backend less", seed, name)
		}
	}
}

// At 30% load round robin's quarter is more than the slow backend can
// serve: latency grows with the run (p99 over a second) while least
// connections stays near its 20% figure.
func TestRoundRobinOverloadsTheSlowBackend(t *testing.T) {
	cfg := Default
	cfg.Load, cfg.Requests = 0.3, 50_000
	assert.Greater(t, run(t, cfg, "round robin").Quantile(0.99), time.Second)
	assert.Less(t, run(t, cfg, "least connections").Quantile(0.99), 30*time.Millisecond)
}

// Capacity-proportional weights send the slow backend its share of the
// capacity: 1 of (3 × 5 + 1).
func TestWeightsMatchCapacity(t *testing.T) {
	cfg := Default
	cfg.Requests = 20_000
	assert.InDelta(t, 1.0/16, run(t, cfg, "weighted RR, weights = capacity").Share[3], 1e-3)
}

// Same seed, same result: the property the chart's `go generate` check and
// the ordering test rely on.
func TestRunIsDeterministic(t *testing.T) {
	cfg := Default
	cfg.Requests = 10_000
	for _, a := range Algorithms {
		r1, err := Run(cfg, a)
		require.NoError(t, err)
		r2, err := Run(cfg, a)
		require.NoError(t, err)
		assert.Equal(t, r1, r2, a.Name)
		assert.Len(t, r1.Latencies, cfg.Requests, "the warm-up is not measured")
	}
}

func TestConfigIsChecked(t *testing.T) {
	for _, tt := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.Backends = 1 }, "2+ backends"},
		{func(c *Config) { c.Slow = 4 }, "fewer slow ones"},
		{func(c *Config) { c.Workers = 0 }, "Workers ≥ 1"},
		{func(c *Config) { c.SlowFactor = 0.5 }, "SlowFactor ≥ 1"},
		{func(c *Config) { c.Load = 1 }, "Load 1 must be in (0, 1)"},
		{func(c *Config) { c.Requests = 10 }, "too few"},
	} {
		c := Default
		tt.mut(&c)
		_, err := Run(c, Algorithms[0])
		assert.ErrorContains(t, err, tt.want)
	}
}

func TestQuantile(t *testing.T) {
	var r Result
	assert.Zero(t, r.Quantile(0.99))
	for i := 1; i <= 1000; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, 500*time.Millisecond, r.Quantile(0.5))
	assert.Equal(t, 990*time.Millisecond, r.Quantile(0.99))
	assert.Equal(t, 999*time.Millisecond, r.Quantile(0.999))
	assert.Equal(t, time.Millisecond, r.Quantile(0))
}

func TestWriteChart(t *testing.T) {
	cfg := Default
	cfg.Requests = 5000
	var curves []Curve
	for i, a := range Algorithms {
		r, err := Run(cfg, a)
		require.NoError(t, err)
		curves = append(curves, Curve{Label: a.Name, Color: fmt.Sprint("#00000", i), Result: r})
	}
	var b bytes.Buffer
	require.NoError(t, WriteChart(&b, "t <&> t", curves))
	svg := b.String()
	assert.Contains(t, svg, "t &lt;&amp;&gt; t", "the title is escaped")
	assert.Equal(t, len(Algorithms), bytes.Count(b.Bytes(), []byte("<polyline")))
	assert.Contains(t, svg, ">p99<")
}
