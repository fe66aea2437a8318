package contract

import (
	"strings"
	"testing"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
)

// UniqueID is what keeps parallel runs against one database apart, so it gets
// its own test: always valid, never repeated, bounded in length.
func TestUniqueID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := UniqueID(t)
		if err := domain.ValidateID(id); err != nil {
			t.Fatalf("UniqueID = %q: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("UniqueID repeated %q", id)
		}
		seen[id] = true
	}
	t.Run("a subtest name far longer than an ID / with odd characters: ü", func(t *testing.T) {
		id := UniqueID(t)
		if err := domain.ValidateID(id); err != nil {
			t.Fatalf("UniqueID = %q: %v", id, err)
		}
		if len(id) != domain.MaxIDLen || !strings.Contains(id, "characters__") {
			t.Errorf("UniqueID = %q (%d bytes), want the tail of the test name cut to %d bytes", id, len(id), domain.MaxIDLen)
		}
	})
}
