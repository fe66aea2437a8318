//go:build integration

package pgstore_test

import (
	"testing"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/contract"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/pgstore"
)

// BenchmarkMiddleware is the middleware on the stack's PostgreSQL: one
// statement per store call, two for a first request, one for a replay.
//
//	go test -tags integration -run '^$' -bench Middleware -benchmem -count 5 ./part07-idempotency/idempotency/pgstore
func BenchmarkMiddleware(b *testing.B) {
	p := pool(b)
	b.Cleanup(func() { deleteTenantsLike(b, p, "bench-%") })
	contract.Bench(b, "postgres", func() idempotency.Store { return pgstore.New(p) }, nil)
}
