// Package tiered is a two-level cache: a bounded in-process L1 (Local) in front of a
// shared Redis L2, with a loader behind both.
//
// A read tries L1, then — one caller per key per instance, through a singleflight
// Group — L2, then the loader, filling the levels on the way back. A hot key
// therefore costs Redis one GET per instance per L1 lifetime instead of one per
// request: the Shopee flash-sale figure in the article ("Redis load reduced 99.98%").
// An L1 copy never outlives the L2 entry it was read from, so a value is never older
// than L2TTL, whichever tier serves it.
//
// Writes go to L2 and publish the key on a Redis pub/sub channel; every instance,
// the writer included, drops the key from its L1 on receipt. go-redis/cache has a
// local tier but nothing that tells the other instances' local tiers about a write,
// so each of them serves its old copy until its own TTL runs out.
//
// Pub/sub is at-most-once, and a subscription can stop delivering without its
// connection closing (a network black hole), which go-redis does not notice: its
// health check writes a PING but never waits for the answer, and a subscriber's read
// has no deadline. So each instance pings over its own subscription and serves L1
// only within Options.InvalidationBound of the last answered ping: a write whose
// invalidation an instance missed is served from that instance's L1 for less than
// the bound (2 s by default), then reads go to L2 until the subscription is healthy
// again. When the subscription reconnects, the instance clears its whole L1, since
// it cannot know what it missed.
package tiered
