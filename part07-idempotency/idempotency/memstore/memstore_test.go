package memstore_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/contract"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/memstore"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// TestContract runs the suite on the fake clock: TTLs of seconds cost no time.
func TestContract(t *testing.T) {
	contract.Run(t, contract.Harness{New: func(*testing.T) idempotency.Store { return memstore.New() }, Bubble: true})
}

// Expired records are deleted as writes go by, so a store that sees a stream
// of one-off keys holds only the live ones.
func TestSweepBoundsMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memstore.New()
		ctx := context.Background()
		for i := range 10_000 {
			_, err := s.Claim(ctx, idempotency.Key{ID: string(rune('a'+i%26)) + time.Duration(i).String()}, idempotency.Record{State: idempotency.InProgress, Token: "t"}, time.Second)
			require.NoError(t, err)
			time.Sleep(10 * time.Millisecond) // 100 claims live at any time
		}
		assert.Equal(t, 100, s.Len(), "the claims of the last second")
	})
}
