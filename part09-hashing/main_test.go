package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("PART09_RUN_MAIN"); ok { // TestMainExitCodes re-runs this binary as the command
		os.Args = append([]string{"part09-hashing"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	leakcheck.VerifyTestMain(m)
}

// noCluster points the demo at a port where nothing listens, so that the test
// sees the no-services path even when a stack is up.
func noCluster(t *testing.T) { t.Setenv("REDIS_CLUSTER_ADDRS", "127.0.0.1:1") }

// small keeps the runs quick under -race; the numbers are still computed.
var small = []string{"-keys", "20000", "-sets", "3"}

// Every mode runs to completion with no services and prints its key lines.
func TestRunEveryModeWithoutServices(t *testing.T) {
	noCluster(t)
	for _, tc := range []struct {
		mode string
		want []string
		re   []string // regexps over the whole output
	}{
		{"remap", []string{"minimum possible", "ring V=200 crc32 (article)", "ring V=200 xxhash (default)",
			"bounded-load ε=0.05 xxhash", "the article's example keys, real CRC32", "moved 3→4: modulo 3 of 4, ring 0 of 4"},
			[]string{`(?m)^\s+modulo\s+7[0-9]\.\d%`}},
		{"stddev", []string{"Load std-dev / mean, hash crc32", "Load std-dev / mean, hash xxhash", "article (N=5)",
			"BenchmarkLoadDistribution re-run: nodes node-a…node-e", "Fewer nodes need more vnodes?",
			"(three random arcs: 11/18 = 61.1%)", `"some nodes 5×+ overloaded": hottest node / mean by N`},
			[]string{`(?m)^\s+1\s+55\.2%\s+55\.0%\s+1\d\d\.\d%`, `(?m)^\s+20\s+\d\.\d%`,
				`(?m)^\s+5\s+4\.\d\d\s+\d\.\d\d\s+\d\.\d\d\s+2\.28\s+5$`}},
		{"getn", []string{"GetNode / GetN on a 5-node ring (V=200, xxhash",
			"2 points kept, GetN(user:1001, 2) = [node-4170cb18 node-8755d764]", "bounded ε=0.05 crc32"},
			[]string{`(?m)^\s+ring xxhash\s+3\d\.\d%\s+(1\.[89]\d|2\.[01]\d)×`,
				`(?m)^\s+bounded ε=0\.05 crc32\s+\S+\s+\S+\s+1\.0([0-4]\d|50)$`}},
		{"rebalance", []string{"A 7th node joins 6", "speed-up"},
			[]string{`(?m)^\s+1\s+\d+\.\d%\s+1\s+100\.0%\s+1\.0×`, `(?m)^\s+256\s+\d+\.\d%\s+6\s+`}},
		{"slots", []string{"user:1001:profile → slot 2549, user:1001:cart → slot 6577", "tagged, both are slot 5712",
			"Redis Cluster not reachable", "scripts/stack up redis-cluster"},
			[]string{`(?m)^\s+"\{user:1001\}:cart"\s+"user:1001"\s+5712$`, `(?m)^\s+"foo\{\}\{bar\}"\s+"foo\{\}\{bar\}"\s+8363$`}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run(t.Context(), append([]string{"-mode", tc.mode}, small...), &out))
			for _, w := range tc.want {
				assert.Contains(t, out.String(), w)
			}
			for _, re := range tc.re {
				assert.Regexp(t, regexp.MustCompile(re), out.String())
			}
			assert.NotContains(t, out.String(), "NaN")
			assert.NotContains(t, out.String(), "Inf")
		})
	}
}

func TestRunAllRunsEveryModeOnce(t *testing.T) {
	noCluster(t)
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), small, &out))
	for _, h := range []string{"Keys moved", "Load std-dev / mean, hash crc32", "Load std-dev / mean, hash xxhash",
		"The article's BenchmarkLoadDistribution", `V=1, "some nodes 5×+ overloaded"`, "Fewer nodes", "Three nodes", "GetNode / GetN", "Weights:",
		"A 7th node", "Redis Cluster slots"} {
		assert.Equal(t, 1, strings.Count(out.String(), "\n== "+h), "section %q", h)
	}
	assert.Equal(t, 11, strings.Count(out.String(), "\n== "), "number of sections")
}

// -chart runs the std-dev tables whatever the mode and writes a valid SVG.
func TestChart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chart.svg")
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), append([]string{"-mode", "getn", "-chart", path}, small...), &out))
	assert.Contains(t, out.String(), "wrote "+path)
	assert.Contains(t, out.String(), "Load std-dev / mean, hash xxhash")
	svg, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(svg, []byte("<svg ")), "chart starts %q", svg[:min(len(svg), 20)])
}

func TestRunRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-mode", "bogus"}, `unknown -mode "bogus"`},
		{[]string{"-keys", "0"}, "-keys 0 out of range"},
		{[]string{"-keys", "-5", "-mode", "stddev"}, "-keys -5 out of range"},
		{[]string{"-keys", "10000001"}, "out of range"},
		{[]string{"-sets", "0"}, "-sets 0 out of range"},
		{[]string{"-sets", "1001"}, "out of range"},
		{[]string{"-hashes", "crc32,md5"}, `unknown hash "md5"`},
		{[]string{"-hashes", ""}, `unknown hash ""`},
		{[]string{"stray"}, `unexpected arguments ["stray"]`},
		{[]string{"-mode", "remap", "extra", "args"}, "unexpected arguments"},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-keys", "many"}, "invalid value"},
	} {
		var out bytes.Buffer
		err := run(t.Context(), tc.args, &out)
		require.Error(t, err, "run(%q)", tc.args)
		assert.True(t, errors.As(err, new(*cli.UsageError)), "run(%q) = %v, want a usage error", tc.args, err)
		assert.Contains(t, err.Error(), tc.msg)
		assert.Empty(t, out.String(), "run(%q) printed output before failing", tc.args)
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-h"}, &out))
	assert.True(t, strings.HasPrefix(out.String(), "usage: go run ./part09-hashing "), out.String())
	for _, w := range []string{"all | remap | stddev | getn | rebalance | slots", "-keys", "-sets", "-hashes", "-chart"} {
		assert.Contains(t, out.String(), w)
	}
}

// The process: usage errors exit 2 with the message on stderr and nothing on
// stdout; -h exits 0.
func TestMainExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args   string
		code   int
		stderr string
	}{
		{"-mode bogus", 2, `part09-hashing: unknown -mode "bogus"`},
		{"-keys 0", 2, "-keys 0 out of range"},
		{"-mode remap stray", 2, "unexpected arguments"},
		{"-nope", 2, "flag provided but not defined"},
		{"-h", 0, ""},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "PART09_RUN_MAIN="+tc.args)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err, tc.args)
		}
		assert.Equal(t, tc.code, code, "%s: stderr %s", tc.args, stderr.String())
		if tc.code == 2 {
			assert.Contains(t, stderr.String(), tc.stderr)
			assert.Contains(t, stderr.String(), "usage: go run ./part09-hashing")
			assert.Empty(t, stdout.String(), tc.args)
		} else {
			assert.Contains(t, stdout.String(), "usage: go run ./part09-hashing")
			assert.Empty(t, stderr.String())
		}
	}
}
