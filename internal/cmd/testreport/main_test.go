package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name, in      string
		stackRequired bool
		code          int
		want, notWant []string
	}{
		{
			name: "a pass and a fail: the failed test's output only",
			in: `{"Action":"output","Package":"p","Test":"TestA","Output":"noise of a pass\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestB","Output":"why B failed\n"}
{"Action":"fail","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}
{"Action":"fail","Package":"p"}`,
			code:    1,
			want:    []string{"--- FAIL: p TestB\nwhy B failed\n", "FAIL\tp\t0.1s\n", "1 passed, 1 failed, 0 skipped"},
			notWant: []string{"noise of a pass", "outside any test"},
		},
		{
			// TestMain's goleak check, a race after the last test: every test
			// passed, the package failed, and its own output says why.
			name: "a package that fails outside any test",
			in: `{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"goleak: found unexpected goroutines\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}
{"Action":"fail","Package":"p"}`,
			code: 1,
			want: []string{"--- FAIL: p (outside any test; its output follows)\ngoleak: found unexpected goroutines\n", "1 passed, 0 failed, 0 skipped"},
		},
		{
			name: "a passing package prints its ok line, not its output",
			in: `{"Action":"output","Package":"p","Output":"chatter\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}
{"Action":"pass","Package":"p"}`,
			want:    []string{"ok  \tp\t0.1s\n", "0 passed, 0 failed, 0 skipped"},
			notWant: []string{"chatter"},
		},
		{
			name: "a skip with STACK_REQUIRED fails the run",
			in: `{"Action":"output","Package":"p","Test":"TestS","Output":"    x_test.go:9: redis is not running\n"}
{"Action":"skip","Package":"p","Test":"TestS"}`,
			stackRequired: true,
			code:          1,
			want:          []string{"SKIP p TestS: x_test.go:9: redis is not running", "the skips above fail this run"},
		},
		{
			name: "a build error is printed as is",
			in:   "# p\n./x.go:1: syntax error\n",
			want: []string{"./x.go:1: syntax error\n"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			assert.Equal(t, tc.code, report(strings.NewReader(tc.in), &out, tc.stackRequired))
			for _, w := range tc.want {
				assert.Contains(t, out.String(), w)
			}
			for _, w := range tc.notWant {
				assert.NotContains(t, out.String(), w)
			}
		})
	}
}
