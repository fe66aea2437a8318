package contract

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
)

// UniqueID is what keeps parallel runs against one database apart, so it gets
// its own test: always valid, never repeated, bounded in length.
func TestUniqueID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := UniqueID(t)
		require.NoError(t, domain.ValidateID(id))
		require.False(t, seen[id], "UniqueID repeated %q", id)
		seen[id] = true
	}
	t.Run("a subtest name far longer than an ID / with odd characters: ü", func(t *testing.T) {
		id := UniqueID(t)
		require.NoError(t, domain.ValidateID(id))
		assert.Len(t, id, domain.MaxIDLen, "cut to the longest ID")
		assert.Contains(t, id, "characters__", "keeps the tail of the test name")
	})
}
