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

// CRC32 is the article's hash (crc32.ChecksumIEEE) and the ring's default. CRC32
// is a checksum, not a mixing hash: it is fast and, measured over the article's
// "key:%d" keys, spreads points about as well as xxhash (see the chapter README).
func CRC32(s string) uint32 { return crc32.ChecksumIEEE(bytesOf(s)) }

// XXHash is the low 32 bits of xxhash64, a well-mixed non-cryptographic hash
// (the one go-redis Ring uses for rendezvous hashing).
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
