// Package tiered is a two-level cache: a bounded in-process L1 (Local) in front of a
// shared Redis L2, with a loader behind both.
//
// A read tries L1, then — one caller per key per instance, through a singleflight
// Group — L2, then the loader, filling the levels on the way back. A hot key
// therefore costs Redis one GET per instance per L1 lifetime instead of one per
// request: the Shopee flash-sale figure in the article ("Redis load reduced 99.98%").
//
// Writes go to L2 and publish the key on a Redis pub/sub channel; every instance,
// the writer included, drops the key from its L1 on receipt. go-redis/cache has a
// local tier but nothing that tells the other instances' local tiers about a write,
// so each of them serves its old copy until its own TTL runs out.
//
// Pub/sub is at-most-once: a message sent while an instance is disconnected is lost.
// Two things bound the damage. L1 entries live at most the L1 TTL (1–5 s). And when
// the subscription reconnects (go-redis re-subscribes on its own), the instance
// clears its whole L1, since it cannot know what it missed.
package tiered
