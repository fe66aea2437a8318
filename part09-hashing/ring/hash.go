package ring

import (
	"hash/crc32"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// Hash maps a string to a point on the 32-bit ring. It takes a string, not a
// []byte, so that a lookup never has to copy the key: converting a string to
// []byte for a hash called through a function value is what makes
// groupcache's consistenthash allocate on every Get.
//
// A Hash must be deterministic and safe for concurrent use.
type Hash func(s string) uint32

// CRC32 is the article's hash (crc32.ChecksumIEEE), kept to reproduce its
// ring with WithHash(CRC32). It is a checksum, not a mixing hash: CRC is linear
// over GF(2), so the vnode keys "node-3#i" and "node-0#i" hash to points that
// differ by one constant XOR, and every node's points are a copy of every
// other's. A CRC32 ring spreads keys 2.5–4.7× worse than an xxhash ring at
// 200–1000 vnodes and stops improving past about 100 (the chapter README has
// the measurement). Do not use it for new rings.
func CRC32(s string) uint32 { return crc32.ChecksumIEEE(bytesOf(s)) }

// XXHash is the low 32 bits of xxhash64, a well-mixed non-cryptographic hash
// (the one go-redis Ring uses for rendezvous hashing) and the ring's default:
// its vnode points behave like independent random points, so a node's share
// of the keys varies by about 1/√V.
func XXHash(s string) uint32 { return uint32(xxhash.Sum64String(s)) }

// FNV1a is 32-bit FNV-1a, written out so that it hashes a string in place; the
// standard library's hash/fnv needs a hash.Hash32 and a []byte.
func FNV1a(s string) uint32 {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= prime32
	}
	return h
}

// bytesOf views s as a []byte without copying. The slice must only be read:
// every hash above reads its input and keeps no reference to it.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// stringOf views b as a string without copying, for hashing a vnode key built
// in a reused buffer. b must not change while the string is in use.
func stringOf(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Hashes names the hashes this package ships, for flags and reports.
var Hashes = map[string]Hash{"crc32": CRC32, "xxhash": XXHash, "fnv1a": FNV1a}
