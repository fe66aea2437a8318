package gctrace

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The article reads the middle clock term as "concurrent mark and sweep
// phase". The runtime that prints the line documents it (go doc runtime,
// GODEBUG gctrace) as "concurrent mark and scan", between the two
// stop-the-world phases; sweeping runs after mark termination, concurrently,
// and the line times none of it.
func TestArticleMiddleTermIsMarkAndScan(t *testing.T) {
	out, err := exec.Command("go", "doc", "runtime").CombinedOutput()
	require.NoError(t, err, "%s", out)
	doc := strings.Join(strings.Fields(string(out)), " ")
	assert.Contains(t, doc, "The phases are stop-the-world (STW) sweep termination, concurrent mark and scan, and STW mark termination.")
	assert.NotContains(t, doc, "mark and sweep")
	assert.Contains(t, doc, "gc # @#s #%: #+#+# ms clock, #+#/#/#+# ms cpu, #->#-># MB, # MB goal, # MB stacks, #MB globals, # P",
		"the format this Go prints: the article's sample has no stacks and globals")
	assert.Contains(t, doc, "#% percentage of time spent in GC since program start")
}
