package ring

import (
	"strconv"
	"testing"
)

var sink string

// BenchmarkGetNode is one lookup at N=10, V=200, beside jump hash (no ring,
// no memory) as the floor; bench/part09 compares the anchor libraries.
func BenchmarkGetNode(b *testing.B) {
	ks := keys(1 << 12)
	for _, h := range []string{"xxhash", "crc32"} {
		r := build(200, Hashes[h], names(10)...)
		b.Run("impl=ours/hash="+h, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sink = r.GetNode(ks[i&(len(ks)-1)])
				i++
			}
		})
	}
	nodes := names(10)
	b.Run("impl=jump/hash=xxhash", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sink = nodes[JumpString(ks[i&(len(ks)-1)], len(nodes))]
			i++
		}
	})
}

// BenchmarkGetN is a replica-set lookup (RF=3): one allocation, the result.
func BenchmarkGetN(b *testing.B) {
	ks := keys(1 << 12)
	r := build(200, XXHash, names(10)...)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sink = r.GetN(ks[i&(len(ks)-1)], 3)[0]
		i++
	}
}

// BenchmarkAddNode adds an 11th node to a 10-node ring at several V: hashing
// V points, one merge and one index build.
func BenchmarkAddNode(b *testing.B) {
	for _, v := range []int{16, 200, 1000} {
		b.Run("v="+strconv.Itoa(v), func(b *testing.B) {
			r := build(v, XXHash, names(10)...)
			b.ReportAllocs()
			for b.Loop() {
				r.AddNode("extra")
				r.RemoveNode("extra")
			}
		})
	}
}

var sink32 uint32

// BenchmarkHash hashes the article's keys ("key:0"…"key:4095", 5–8 bytes):
// the article picks crc32.ChecksumIEEE "for speed".
func BenchmarkHash(b *testing.B) {
	ks := keys(1 << 12)
	for _, h := range []string{"xxhash", "crc32", "fnv1a"} {
		f := Hashes[h]
		b.Run("hash="+h, func(b *testing.B) {
			i := 0
			for b.Loop() {
				sink32 = f(ks[i&(len(ks)-1)])
				i++
			}
		})
	}
}
