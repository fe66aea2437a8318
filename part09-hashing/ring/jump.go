package ring

import "github.com/cespare/xxhash/v2"

// Jump is jump consistent hash (Lamping and Veach, "A Fast, Minimal Memory,
// Consistent Hash Algorithm", 2014): it maps a 64-bit key to a bucket in
// [0, buckets) with no ring and no memory, a near-perfect spread, and moves only
// 1/(n+1) of the keys when bucket n is appended. Its limit: buckets are numbers,
// so only the last one can be removed; taking an arbitrary node out needs a ring
// (or a remapping table on top). It returns -1 if buckets < 1.
func Jump(key uint64, buckets int) int {
	b, j := int64(-1), int64(0)
	for j < int64(buckets) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// JumpString is Jump over xxhash64 of key: jump hash needs well-mixed 64-bit
// keys, which a 32-bit CRC does not provide.
func JumpString(key string, buckets int) int { return Jump(xxhash.Sum64String(key), buckets) }
