package part09bench

import (
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"
	jump "github.com/dgryski/go-jump"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part09-hashing/measure"
	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

func TestJumpMatchesDgryski(t *testing.T) {
	for i := range 20_000 {
		k := xxhash.Sum64String("key:" + strconv.Itoa(i))
		for n := 1; n <= 40; n++ {
			require.Equal(t, int(jump.Hash(k, n)), ring.Jump(k, n), "Jump(%d, %d) against go-jump", k, n)
		}
	}
}

// TestLoadSpreadOfAnchors measures std-dev / mean of keys per node at N=10,
// V=200 for every ring, on the article's 100,000 keys. CRC32 over vnode names
// that differ in one byte ("node-3#17" vs "node-0#17", or groupcache's
// "17node-3") gives every node an XOR-shifted copy of the same points, so the
// arcs are far from random: groupcache inherits the spread of the article's
// CRC32 ring, while MD5 (serialx) and xxhash follow the random-arc model.
func TestLoadSpreadOfAnchors(t *testing.T) {
	keys := measure.Keys(100_000)
	cv := map[string]float64{}
	for _, l := range lookups() {
		cv[l.name] = measure.Loads(nodes, keys, l.get).CV()
		t.Logf("%-32s std-dev/mean %5.1f%%", l.name, 100*cv[l.name])
	}
	model := measure.ArcModel(numNodes, vnodes, len(keys))
	t.Logf("random-arc model %.1f%%, 1/√(N·V) %.1f%%", 100*model, 100*measure.ArticleModel(numNodes, vnodes))
	for _, good := range []string{"impl=ours/hash=xxhash", "impl=serialx/hash=md5"} {
		assert.LessOrEqual(t, cv[good], 2*model, "%s against twice the random-arc model", good)
	}
	for _, crc := range []string{"impl=ours/hash=crc32", "impl=groupcache/hash=crc32", "impl=article/hash=crc32"} {
		assert.GreaterOrEqual(t, cv[crc], 1.5*model, "%s: the CRC32 vnode-pattern effect is gone", crc)
	}
}
