package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReportRatiosAgainstOurs(t *testing.T) {
	rs, err := load("testdata/sample.txt")
	require.NoError(t, err)
	assert.Equal(t, "Test CPU @ 2.0GHz", rs.cpu)
	assert.Equal(t, []string{"example.GetNode/hash=xxhash-2", "example.Build-2"}, rs.order, "groups drop impl=, keep other elements; Lonely has no impl")

	var out bytes.Buffer
	require.NoError(t, report(&out, rs, rs))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 6)
	// median of 10, 12, 11 is 11; of 22, 22 is 22
	assert.Regexp(t, `^example\.GetNode/hash=xxhash-2\s+jump\s+11\.0\s+22\.0\s+2\.00×\s+0\|8\s+0\|1\s+2\.00×$`, lines[4])
	assert.Regexp(t, `^example\.Build-2\s+groupcache\s+100\.0\s+300\.0\s+3\.00×\s+40\|80\s+1\|3\s+3\.00×$`, lines[5])
}

func TestReportNeedsOursAndAnAnchor(t *testing.T) {
	rs := &results{groups: map[string]map[string]map[string][]float64{}}
	require.NoError(t, rs.read(strings.NewReader("BenchmarkX/impl=jump-2 10 5 ns/op\n"), "x"))
	assert.ErrorContains(t, report(&bytes.Buffer{}, rs, nil), "impl=ours")

	_, err := load("testdata/missing.txt")
	assert.Error(t, err)
}

// Units a benchmark reports itself get a second table; without them the
// output is the one table above.
func TestReportCustomUnits(t *testing.T) {
	rs := &results{groups: map[string]map[string]map[string][]float64{}}
	require.NoError(t, rs.read(strings.NewReader(`pkg: example
BenchmarkW/impl=ours-2 10 100 ns/op 40 cpu-ns/op
BenchmarkW/impl=ours-2 10 110 ns/op 44 cpu-ns/op
BenchmarkW/impl=trace-2 10 130 ns/op 60 cpu-ns/op
`), "x"))
	var out bytes.Buffer
	require.NoError(t, report(&out, rs, nil))
	assert.Regexp(t, `(?m)^example\.W-2\s+trace\s+cpu-ns/op\s+42\s+60\s+1\.43×$`, out.String())

	plain, err := load("testdata/sample.txt")
	require.NoError(t, err)
	out.Reset()
	require.NoError(t, report(&out, plain, nil))
	assert.NotContains(t, out.String(), "report themselves")
}

// A CPU-time metric (cpu-ns/op, or cpu-µs/req from the HAProxy comparison)
// adds a column with its ratio; runs without one keep the table as it was.
func TestReportCPUColumn(t *testing.T) {
	rs := &results{groups: map[string]map[string]map[string][]float64{}}
	require.NoError(t, rs.read(strings.NewReader(`BenchmarkL7/impl=ours-2 1 100000 ns/op 60 cpu-µs/req
BenchmarkL7/impl=haproxy-2 1 40000 ns/op 12 cpu-µs/req
BenchmarkKeyed/impl=ours-2 10 100 ns/op
BenchmarkKeyed/impl=other-2 10 50 ns/op
BenchmarkAllow/impl=ours-2 10 300 ns/op 90 cpu-ns/op
BenchmarkAllow/impl=other-2 10 350 ns/op 80 cpu-ns/op
`), "x"))
	var out bytes.Buffer
	require.NoError(t, report(&out, rs, nil))
	// the first table; the second (TestReportCustomUnits) repeats the CPU
	// metrics with their values
	first, _, _ := strings.Cut(out.String(), "\n\n")
	lines := strings.Split(strings.TrimSpace(first), "\n")
	require.Len(t, lines, 6)
	assert.Contains(t, lines[2], "CPU anchor÷ours")
	assert.Regexp(t, `^L7-2\s+haproxy\s+100000\.0\s+40000\.0\s+0\.40×\s+-\s+-\s+0\.20×$`, lines[3])
	assert.Regexp(t, `^Keyed-2\s+other\s+100\.0\s+50\.0\s+0\.50×\s+-\s+-\s+-$`, lines[4])
	// cpu-ns/op reaches the reader as cpu-sec/op: the column missed it.
	assert.Regexp(t, `^Allow-2\s+other\s+300\.0\s+350\.0\s+1\.17×\s+-\s+-\s+0\.89×$`, lines[5])
}

// A paired benchmark (contenders in turns within one op, no impl= element)
// reports NAME-ns/cycle per contender: its ratios are in the second table.
func TestReportPairedCycles(t *testing.T) {
	rs := &results{groups: map[string]map[string]map[string][]float64{}}
	require.NoError(t, rs.read(strings.NewReader(`pkg: example
BenchmarkW/impl=ours-2 10 100 ns/op
BenchmarkW/impl=other-2 10 200 ns/op
BenchmarkP/backend=a-2 3 900 ns/op 50 ours-ns/cycle 40 fast-ns/cycle 1.25 fast-x-ours
BenchmarkP/backend=a-2 3 900 ns/op 60 ours-ns/cycle 45 fast-ns/cycle 1.33 fast-x-ours
`), "x"))
	var out bytes.Buffer
	require.NoError(t, report(&out, rs, nil))
	first, second, _ := strings.Cut(out.String(), "\n\n")
	assert.NotContains(t, first, "backend=a")
	assert.Regexp(t, `(?m)^example\.P/backend=a-2\s+fast\s+ns/cycle\s+55\s+42\.5\s+0\.77×$`, second)
}

// A rate (a count per second: req/s, msgs/s) is better when higher, so its
// ratio is ours÷anchor: above 1.00× means ours is better, as for times.
func TestReportRatesReadTheSameWayAsTimes(t *testing.T) {
	rs := &results{groups: map[string]map[string]map[string][]float64{}}
	require.NoError(t, rs.read(strings.NewReader(`pkg: example
BenchmarkL7/impl=ours-2 1 100000 ns/op 10000 req/s 40 p99-ms
BenchmarkL7/impl=haproxy-2 1 40000 ns/op 25000 req/s 20 p99-ms
BenchmarkCounter/impl=ours-2 1 1000 ns/op 55000 checks/s
BenchmarkCounter/impl=other-2 1 1000 ns/op 31900 checks/s
`), "x"))
	var out bytes.Buffer
	require.NoError(t, report(&out, rs, nil))
	_, second, _ := strings.Cut(out.String(), "\n\n")
	assert.Regexp(t, `(?m)^example\.L7-2\s+haproxy\s+req/s\s+10,?000\s+25,?000\s+0\.40×$`, second, "ours does 0.40× HAProxy's requests per second")
	assert.Regexp(t, `(?m)^example\.L7-2\s+haproxy\s+p99-ms\s+40\s+20\s+0\.50×$`, second, "ours' p99 is twice HAProxy's: 0.50×")
	assert.Regexp(t, `(?m)^example\.Counter-2\s+other\s+checks/s\s+55,?000\s+31,?900\s+1\.72×$`, second, "ours is the faster one: above 1")
}
