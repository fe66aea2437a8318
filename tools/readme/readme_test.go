// Package readme checks the chapter READMEs against the code: every test, fuzz
// target, benchmark and example a README names must exist in that chapter (or, for
// benchmarks, in its bench/ folder), so a renamed test cannot leave a README
// pointing at nothing.
package readme

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sysdesign-masterclass/golang/tools/internal/repo"
)

var (
	named   = regexp.MustCompile(`\b((?:Test|Fuzz|Benchmark|Example)[A-Z][A-Za-z0-9_]*)`)
	defined = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark|Example)[A-Za-z0-9_]*)\(`)
)

// articleNames are functions of the article's own code that a README quotes in an
// erratum: they exist in the article, not here.
var articleNames = map[string]bool{
	"BenchmarkLoadDistribution": true, // part 9's benchmark with a *testing.T signature
}

// funcs lists the test-like functions declared in the Go files under dirs.
func funcs(t *testing.T, dirs ...string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		require.NoError(t, filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range defined.FindAllStringSubmatch(string(src), -1) {
				out[m[1]] = true
			}
			return nil
		}))
	}
	return out
}

func TestREADMEsNameTestsThatExist(t *testing.T) {
	r := repo.Root(t)
	chapters, err := filepath.Glob(filepath.Join(r, "part[0-9][0-9]-*"))
	require.NoError(t, err)
	require.NotEmpty(t, chapters)
	for _, ch := range chapters {
		readme, err := os.ReadFile(filepath.Join(ch, "README.md"))
		if !assert.NoError(t, err, "every chapter has a README") {
			continue
		}
		nn := strings.TrimPrefix(filepath.Base(ch), "part")[:2]
		have := funcs(t, ch, filepath.Join(r, "bench", "part"+nn))
		seen := map[string]bool{}
		for _, m := range named.FindAllStringSubmatch(string(readme), -1) {
			name := m[1]
			if seen[name] {
				continue
			}
			seen[name] = true
			if articleNames[name] || prefixOfOne(have, name) {
				continue // e.g. -run '^TestFault' selects a family of tests
			}
			assert.True(t, have[name], "%s/README.md names %s, which no Go file of the chapter (or bench/part%s) declares", filepath.Base(ch), name, nn)
		}
	}
}

func prefixOfOne(have map[string]bool, name string) bool {
	for h := range have {
		if strings.HasPrefix(h, name) {
			return true
		}
	}
	return false
}
