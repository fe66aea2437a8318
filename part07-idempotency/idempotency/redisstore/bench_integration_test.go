//go:build integration

package redisstore_test

import (
	"testing"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/contract"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/redisstore"
)

// BenchmarkMiddleware is the middleware on the stack's Redis, with the round
// trips per request counted by a go-redis hook (goals: 2 first, 1 replay).
//
//	go test -tags integration -run '^$' -bench Middleware -benchmem -count 5 ./part07-idempotency/idempotency/redisstore
func BenchmarkMiddleware(b *testing.B) {
	rdb, s := real(b)
	var rt redisstore.RoundTrips
	rdb.AddHook(&rt)
	contract.Bench(b, "redis", func() idempotency.Store { return s }, rt.Reset)
}
