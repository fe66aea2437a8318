// Package shard routes keys to shards and queries across them.
//
// Four strategies sit behind one Router interface, each a Vitess vindex's idea
// in a few lines:
//
//   - Range: shard i owns an interval of ids. The article's "directory-based"
//     router is this one with the intervals written into a switch: sequential
//     ids then send every new user to the last shard.
//   - Jump: jump consistent hash of xxhash(id). Going from N to N+1 shards it
//     moves the minimum in expectation (1/(N+1) of the rows), and only to the new
//     shard. Modulo (xxhash(id) % N) is here as the warning: N to N+1 moves
//     N/(N+1) of the rows.
//   - KeyRange: Vitess's layout: a keyspace id (here xxhash(id)) and shards that
//     own ranges of it ("-80", "80-"). Splitting ranges evenly moves about half
//     the rows going 2→3, as Range does.
//   - Directory: a lookup table (in PostgreSQL, or memory) from id to shard, as a
//     Vitess lookup vindex. Any key can be moved alone, so a resharding moves
//     exactly the minimum; the price is a lookup per route.
//
// A Cluster puts each user on the shard its Router names and answers
// "the top k users by score" across every shard (scatter-gather): each shard
// returns its own top k in the same order, and a k-way merge keeps the global
// top k. A shard that fails makes the whole query fail with an error naming it,
// unless the caller allows a partial result, which then lists the shards it
// lacks: never a silently short answer.
package shard
