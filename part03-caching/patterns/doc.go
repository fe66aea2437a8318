// Package patterns holds the article's five cache read/write patterns over Redis (the
// cache) and a Store (the system of record: PostgreSQL, or MemStore in tests and in
// the demo when no database runs), plus negative caching of "not found".
//
//	pattern        write goes to            read                      consistency  write latency  loss risk
//	CacheAside     DB, then DEL the key     app: cache → DB → fill    eventual     low            low
//	ReadThrough    (reads only)             cache loads itself        eventual     —              low
//	WriteThrough   DB, then cache (CAS)     read-through              strong*      high (both)    very low
//	WriteBehind    cache + buffer → DB      buffer → cache → DB       eventual     very low       HIGH (window)
//	WriteAround    DB only                  cache-aside               strong**     low            low
//
// * Write-through is only as strong as the order of cache writes: two writers whose
// SETs land in the opposite order of their commits leave the older value cached.
// Entries carry the row's version and the cache write is a compare-and-set on it,
// so the cache never moves backwards.
// ** Write-around never touches the cache: safe for write-once keys. A key read
// before it existed holds a "not found" tombstone for NegativeTTL; a write-around
// insert stays hidden behind it until then (see the tests).
package patterns
