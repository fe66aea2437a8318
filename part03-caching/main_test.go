package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

// TestMain runs main itself when a test re-executes this binary (exit codes and
// stderr are main's job, not run's).
func TestMain(m *testing.M) {
	if os.Getenv("PART03_RUN_MAIN") == "1" {
		os.Args = append([]string{"part03-caching"}, strings.Fields(os.Getenv("PART03_ARGS"))...)
		main()
		os.Exit(0)
	}
	leakcheck.VerifyTestMain(m)
}

// small keeps every section short; -stack off keeps the test independent of the stack.
var small = []string{"-stack", "off", "-writes", "40", "-n", "200", "-trickle", "40", "-ttl", "200ms",
	"-backend-latency", "20ms", "-shopee-requests", "2000", "-spike", "100ms", "-lfu-keys", "300", "-lfu-accesses", "5000"}

// The demo must run to completion on a fresh clone, with no services.
func TestRunEveryModeWithoutServices(t *testing.T) {
	want := map[string][]string{
		"patterns": {"== Five patterns", "cache-aside", "write-through", "write-behind", "write-around", "negative caching:", "article: write latency", "article: loss risk", "Very Low", "(window 64)"},
		"stampede": {"== Stampede on a hot key", "plain TTL", "XFetch + singleflight", "tiered: L1 + L2, both 200ms", "4 pods, singleflight + Redis lock"},
		"shopee":   {"== Shopee flash sale", "L1 per pod, no singleflight", "L1 per pod (tiered.Cache)", `article: "99.98%" = 1 - 100/500000 = 99.980%`},
		"lfu":      {"== Redis LFU and LRU"},
	}
	for _, m := range modes {
		t.Run(m.Name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run(t.Context(), append([]string{"-mode", m.Name}, small...), &out), out.String())
			for _, s := range want[m.Name] {
				assert.Contains(t, out.String(), s)
			}
			assert.Equal(t, 1, strings.Count(out.String(), "\n== "), "-mode %s must run one section", m.Name)
			if m.Name != "lfu" {
				assert.Contains(t, out.String(), "Redis:      miniredis in-process")
			}
			if m.Name == "lfu" && !strings.Contains(out.String(), "skipped: the LFU demo needs the redis-server binary") {
				for _, s := range []string{"a key just written: OBJECT FREQ 5 (LFU_INIT_VAL, not 0); after one GET: 6",
					"survive allkeys-lfu", "maxmemory-samples  evicted"} {
					assert.Contains(t, out.String(), s)
				}
			}
		})
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "bogus"},
		{"stray"},
		{"-mode", "stampede", "extra"},
		{"-bogus"},
		{"-stack", "maybe"},
		{"-writes", "0"},
		{"-n", "0"},
		{"-trickle", "-1"},
		{"-ttl", "0s"},
		{"-ttl", "48h"},
		{"-backend-latency", "-1ms"},
		{"-beta", "0"},
		{"-beta", "NaN"},
		{"-stampede-pods", "0"},
		{"-shopee-requests", "0"},
		{"-pods", "0"},
		{"-spike", "0s"},
		{"-l1-ttl", "0s"},
		{"-l1-ttl", "25h"},
		{"-lfu-keys", "1"},
		{"-lfu-accesses", "0"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), args, &out)
		var usage *cli.UsageError
		assert.True(t, errors.As(err, &usage), "run(%q) = %v, want a usage error", args, err)
		assert.Empty(t, out.String(), "run(%q) printed output as if it had run", args)
	}
}

// TestMainExitCodes runs main in a child process: a usage error goes to stderr with
// the usage line and exit status 2; -h prints the usage with the go run name and
// exits 0.
func TestMainExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args       string
		code       int
		stdout     string
		stderr     string
		stdoutNone bool
	}{
		{args: "-mode bogus", code: 2, stderr: `part03-caching: unknown -mode "bogus"; want all | patterns | stampede | shopee | lfu`, stdoutNone: true},
		{args: "stray", code: 2, stderr: "usage: go run ./part03-caching", stdoutNone: true},
		{args: "-n 0", code: 2, stderr: "-n must be at least 1", stdoutNone: true},
		{args: "-h", code: 0, stdout: "usage: go run ./part03-caching [-mode all|patterns|stampede|shopee|lfu]"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "PART03_RUN_MAIN=1", "PART03_ARGS="+tc.args)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.code, code, "exit status; stderr: %s", stderr.String())
			assert.Contains(t, stdout.String(), tc.stdout)
			assert.Contains(t, stderr.String(), tc.stderr)
			if tc.stdoutNone {
				assert.Empty(t, stdout.String())
			}
		})
	}
}
