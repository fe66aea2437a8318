package memstore_test

import (
	"testing"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/contract"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/memstore"
)

// BenchmarkMiddleware is the middleware's own cost per request: the bare
// handler against the middleware on an in-process store.
//
//	go test -run '^$' -bench Middleware -benchmem -count 5 ./part07-idempotency/idempotency/memstore
func BenchmarkMiddleware(b *testing.B) {
	contract.Bench(b, "memory", func() idempotency.Store { return memstore.New() }, nil)
}
