package limiter

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// A shard is two cache lines exactly, as its padding's comment says: with
// 64 shards in one slice, no two shards' locks share a line or an
// adjacent-line prefetch pair.
// (On 32-bit platforms the fields are smaller and the padding only keeps
// shards apart.)
func TestShardIsTwoCacheLines(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) == 8 {
		assert.Equal(t, uintptr(128), unsafe.Sizeof(shard{}))
	}
}
