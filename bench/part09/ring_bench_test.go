// Package part09bench compares chapter 9's ring (part09-hashing/ring) with the
// anchor libraries on the same keys, nodes and, where the library allows it, the
// same CRC32 hash: golang/groupcache consistenthash, serialx/hashring,
// dgryski/go-jump and dgryski/go-rendezvous (what go-redis Ring uses), plus a
// reconstruction of the article's RWMutex ring.
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 5 ./part09/...
package part09bench

import (
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
	jump "github.com/dgryski/go-jump"
	rendezvous "github.com/dgryski/go-rendezvous"
	"github.com/golang/groupcache/consistenthash"
	"github.com/serialx/hashring"

	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

// The operating point: 10 physical nodes, 200 virtual nodes each.
const (
	numNodes = 10
	vnodes   = 200
)

var (
	nodes = func() []string {
		out := make([]string, numNodes)
		for i := range out {
			out[i] = "node-" + strconv.Itoa(i)
		}
		return out
	}()
	// keys is a power of two so the benchmark loop can pick keys with a mask.
	keys = func() []string {
		out := make([]string, 1<<12)
		for i := range out {
			out[i] = "key:" + strconv.Itoa(i)
		}
		return out
	}()
	sink string
)

// articleRing reconstructs the article's ring: RWMutex, crc32.ChecksumIEEE over
// []byte(key), sorted []uint32, map from point to node, sort.Search. Its map
// overwrite on collisions is kept, as in the article.
type articleRing struct {
	mu       sync.RWMutex
	vnodes   int
	ring     []uint32
	nodeMap  map[uint32]string
	physical map[string]bool
}

func newArticleRing(v int) *articleRing {
	return &articleRing{vnodes: v, nodeMap: map[uint32]string{}, physical: map[string]bool{}}
}

func (r *articleRing) AddNode(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.physical[node] {
		return
	}
	r.physical[node] = true
	for i := 0; i < r.vnodes; i++ {
		h := crc32.ChecksumIEEE([]byte(fmt.Sprintf("%s#%d", node, i)))
		r.ring = append(r.ring, h)
		r.nodeMap[h] = node
	}
	sort.Slice(r.ring, func(i, j int) bool { return r.ring[i] < r.ring[j] })
}

func (r *articleRing) GetNode(key string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.ring) == 0 {
		return ""
	}
	h := crc32.ChecksumIEEE([]byte(key))
	idx := sort.Search(len(r.ring), func(i int) bool { return r.ring[i] >= h })
	if idx == len(r.ring) {
		idx = 0
	}
	return r.nodeMap[r.ring[idx]]
}

func newOurs(h ring.Hash) *ring.Ring {
	r := ring.New(vnodes, ring.WithHash(h))
	for _, n := range nodes {
		r.AddNode(n)
	}
	return r
}

func newArticle() *articleRing {
	r := newArticleRing(vnodes)
	for _, n := range nodes {
		r.AddNode(n)
	}
	return r
}

func newGroupcache() *consistenthash.Map {
	m := consistenthash.New(vnodes, crc32.ChecksumIEEE)
	m.Add(nodes...)
	return m
}

// serialxCRC32 makes serialx/hashring hash with CRC32 instead of its default
// MD5, so that the comparison is about the data structure, not the hash.
var serialxCRC32 = func() hashring.HashFunc {
	f, err := hashring.NewHash(func() hash.Hash { return crc32.NewIEEE() }).
		Use(func(b []byte) (hashring.HashKey, error) {
			if len(b) != 4 {
				return nil, fmt.Errorf("want 4 bytes, got %d", len(b))
			}
			return hashring.Uint32HashKey(binary.BigEndian.Uint32(b)), nil
		})
	if err != nil {
		panic(err)
	}
	return f
}()

// serialx's weight is its number of points per node.
func weights() map[string]int {
	w := make(map[string]int, len(nodes))
	for _, n := range nodes {
		w[n] = vnodes
	}
	return w
}

func newSerialx(crc bool) *hashring.HashRing {
	if crc {
		return hashring.NewWithHashAndWeights(weights(), serialxCRC32)
	}
	return hashring.NewWithWeights(weights())
}

func newRendezvous() *rendezvous.Rendezvous { return rendezvous.New(nodes, xxhash.Sum64String) }

// lookups lists every implementation's GetNode on the same ring shape.
func lookups() []struct {
	name string
	get  func(string) string
} {
	ours, oursXX, art, gc := newOurs(ring.CRC32), newOurs(ring.XXHash), newArticle(), newGroupcache()
	sxCRC, sxMD5, rdv := newSerialx(true), newSerialx(false), newRendezvous()
	return []struct {
		name string
		get  func(string) string
	}{
		{"impl=ours/hash=crc32", ours.GetNode},
		{"impl=ours/hash=xxhash", oursXX.GetNode},
		{"impl=groupcache/hash=crc32", gc.Get},
		{"impl=article/hash=crc32", art.GetNode},
		{"impl=serialx/hash=crc32", func(k string) string { n, _ := sxCRC.GetNode(k); return n }},
		{"impl=serialx/hash=md5", func(k string) string { n, _ := sxMD5.GetNode(k); return n }},
		{"impl=ours-jump/hash=xxhash", func(k string) string { return nodes[ring.JumpString(k, numNodes)] }},
		{"impl=go-jump/hash=xxhash", func(k string) string { return nodes[jump.Hash(xxhash.Sum64String(k), numNodes)] }},
		{"impl=go-rendezvous/hash=xxhash", rdv.Lookup},
	}
}

// BenchmarkGetNode is one lookup at N=10, V=200 (rendezvous and jump have no
// virtual nodes: rendezvous hashes the key with each of the 10 nodes).
func BenchmarkGetNode(b *testing.B) {
	for _, l := range lookups() {
		b.Run(l.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sink = l.get(keys[i&(len(keys)-1)])
				i++
			}
		})
	}
}

// BenchmarkGetNodeParallel runs lookups on every core, as a router or cache
// client does; the article's RWMutex makes readers contend on one counter.
func BenchmarkGetNodeParallel(b *testing.B) {
	for _, l := range lookups() {
		b.Run(l.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var s string
				for i := 0; pb.Next(); i++ {
					s = l.get(keys[i&(len(keys)-1)])
				}
				_ = s
			})
		})
	}
}

// BenchmarkGetNodeDuringWrites measures lookups while another goroutine keeps
// adding and removing a node: the article ring's readers wait for the writer's
// lock (and its full re-sort); ours keep reading the previous snapshot.
func BenchmarkGetNodeDuringWrites(b *testing.B) {
	type rw struct {
		name        string
		get         func(string) string
		add, remove func(string)
	}
	ours, art := newOurs(ring.CRC32), newArticle()
	artRemove := func(n string) { // the article's RemoveNode: filter points, delete map entries
		art.mu.Lock()
		defer art.mu.Unlock()
		if !art.physical[n] {
			return
		}
		delete(art.physical, n)
		kept := art.ring[:0]
		for _, h := range art.ring {
			if art.nodeMap[h] == n {
				delete(art.nodeMap, h)
				continue
			}
			kept = append(kept, h)
		}
		art.ring = kept
	}
	for _, c := range []rw{
		{"impl=ours/hash=crc32", ours.GetNode, ours.AddNode, ours.RemoveNode},
		{"impl=article/hash=crc32", art.GetNode, art.AddNode, artRemove},
	} {
		b.Run(c.name, func(b *testing.B) {
			stop, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
						c.add("node-extra")
						c.remove("node-extra")
					}
				}
			}()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sink = c.get(keys[i&(len(keys)-1)])
				i++
			}
			close(stop)
			<-done
		})
	}
}

// BenchmarkGetN compares replica-set lookups (RF=3).
func BenchmarkGetN(b *testing.B) {
	oursXX, ours, sx := newOurs(ring.XXHash), newOurs(ring.CRC32), newSerialx(true)
	for _, c := range []struct {
		name string
		getN func(string) string
	}{
		{"impl=ours/hash=xxhash", func(k string) string { return oursXX.GetN(k, 3)[0] }},
		{"impl=ours/hash=crc32", func(k string) string { return ours.GetN(k, 3)[0] }},
		{"impl=serialx/hash=crc32", func(k string) string { ns, _ := sx.GetNodes(k, 3); return ns[0] }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sink = c.getN(keys[i&(len(keys)-1)])
				i++
			}
		})
	}
}

// BenchmarkBuild builds a ring of 10 nodes × 200 vnodes per op and reports the
// heap each ring keeps alive (retained-B/ring), measured with runtime.MemStats
// after a GC, beside the build cost (ns/op, and B/op including garbage).
func BenchmarkBuild(b *testing.B) {
	for _, c := range []struct {
		name  string
		build func() any
	}{
		{"impl=ours/hash=xxhash", func() any { return newOurs(ring.XXHash) }},
		{"impl=groupcache/hash=crc32", func() any { return newGroupcache() }},
		{"impl=article/hash=crc32", func() any { return newArticle() }},
		{"impl=serialx/hash=crc32", func() any { return newSerialx(true) }},
		{"impl=go-rendezvous/hash=xxhash", func() any { return newRendezvous() }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			kept := make([]any, 0, b.N)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for range b.N {
				kept = append(kept, c.build())
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			retained := float64(after.HeapAlloc) - float64(before.HeapAlloc)
			b.ReportMetric(retained/float64(b.N), "retained-B/ring")
			runtime.KeepAlive(kept)
		})
	}
}
