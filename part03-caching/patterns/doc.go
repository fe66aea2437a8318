// Package patterns holds the article's five cache read/write patterns behind one
// interface, Pattern (Put, Get), over Redis (the cache) and a Store (the system of
// record: PostgreSQL, or MemStore in tests and in the demo when no database runs),
// with negative caching of "not found".
//
//	pattern       Put writes                  Get reads                 consistency  write cost     a crash loses
//	CacheAside    DB, then DEL the key        cache → DB → fill         eventual     DB + 1 Redis   nothing
//	ReadThrough   DB, then DEL the key        cache → one shared load   eventual     DB + 1 Redis   nothing
//	WriteThrough  DB, then cache (CAS)        as ReadThrough            strong*      DB + 1 Redis   nothing
//	WriteBehind   buffer + cache; DB batched  buffer → cache → DB       eventual**   1 Redis        the buffer
//	WriteAround   DB only                     as CacheAside             stale***     DB             nothing
//
// * Write-through is only as strong as the order of cache writes: two writers whose
// SETs land in the opposite order of their commits leave the older value cached.
// Entries carry the row's version and the cache write is a compare-and-set on it,
// so the cache never moves backwards. The database is written first: a write it
// refuses is never served from the cache.
// ** Read-your-writes in this process; see WriteBehind for its guarantees.
// *** Write-around never touches the cache: an update of a cached key is served
// stale until the TTL, and an insert of a key cached as "not found" stays hidden
// until NegativeTTL. It is for write-once keys.
//
// Every Put refuses, as ErrInvalid, what PostgreSQL could not store (Validate)
// before touching cache or database.
package patterns
