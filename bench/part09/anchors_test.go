package part09bench

import (
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"
	jump "github.com/dgryski/go-jump"

	"github.com/sysdesign-masterclass/golang/part09-hashing/measure"
	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

func TestJumpMatchesDgryski(t *testing.T) {
	for i := range 20_000 {
		k := xxhash.Sum64String("key:" + strconv.Itoa(i))
		for n := 1; n <= 40; n++ {
			if got, want := ring.Jump(k, n), int(jump.Hash(k, n)); got != want {
				t.Fatalf("Jump(%d, %d) = %d, go-jump says %d", k, n, got, want)
			}
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
		if cv[good] > 2*model {
			t.Errorf("%s: %.3f, more than twice the random-arc model %.3f", good, cv[good], model)
		}
	}
	for _, crc := range []string{"impl=ours/hash=crc32", "impl=groupcache/hash=crc32", "impl=article/hash=crc32"} {
		if cv[crc] < 1.5*model {
			t.Errorf("%s: %.3f; the CRC32 vnode-pattern effect is gone (model %.3f)", crc, cv[crc], model)
		}
	}
}
