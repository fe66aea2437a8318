// Package bench holds side-by-side benchmarks of the chapters' packages against the
// anchor libraries each chapter's README compares with (groupcache, ristretto,
// go-redis/cache, serialx/hashring, go-jump, go-rendezvous, ...).
//
// It is a separate module (replace ../) so that these comparison-only dependencies never
// enter the go.mod of the module readers import. One sub-package per chapter:
// bench/part09, bench/part03, ... Run with `make bench` from the repository root.
package bench
