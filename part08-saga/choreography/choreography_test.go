package choreography

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// flow runs three orders (completes, rejected by inventory, declined by
// payment) through bus and returns each order's trace of event types.
func flow(t *testing.T, bus Bus, dup bool) (*State, map[string][]string) {
	t.Helper()
	s := NewState()
	traces := map[string][]string{}
	tr := make(chan Event, 256)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	redelivered := map[string]bool{} // Run calls trace from one goroutine
	go func() {
		done <- Run(ctx, bus, s, func(e Event) {
			tr <- e
			if dup && e.Type != OrderCreated && !redelivered[e.ID] {
				redelivered[e.ID] = true
				_ = bus.Publish(ctx, e) // deliver it again: at least once
			}
		})
	}()
	for _, o := range []struct {
		id, reject string
	}{{"ok", ""}, {"no-stock", "inventory"}, {"declined", "payment"}} {
		require.NoError(t, bus.Publish(t.Context(), Created(o.id, 4990, o.reject)))
		if dup {
			require.NoError(t, bus.Publish(t.Context(), Created(o.id, 4990, o.reject)))
		}
	}
	final := func() bool {
		for _, id := range []string{"ok", "no-stock", "declined"} {
			if st, _, _ := s.Order(id); st == "pending" || st == "" {
				return false
			}
		}
		return true
	}
	deadline := time.After(2 * time.Minute)
	for !final() {
		select {
		case e := <-tr:
			traces[e.OrderID] = append(traces[e.OrderID], e.Type)
		case <-deadline:
			require.FailNow(t, "orders did not settle", "%v", traces)
		}
	}
	// Drain what is still in flight (the last events emit nothing further).
	for quiet := false; !quiet; {
		select {
		case e := <-tr:
			traces[e.OrderID] = append(traces[e.OrderID], e.Type)
		case <-time.After(300 * time.Millisecond):
			quiet = true
		}
	}
	cancel()
	require.NoError(t, <-done)
	return s, traces
}

func checkFlow(t *testing.T, s *State, traces map[string][]string) {
	t.Helper()
	st, r, c := s.Order("ok")
	assert.Equal(t, []any{"confirmed", "reserved", 1}, []any{st, r, c})
	st, r, c = s.Order("no-stock")
	assert.Equal(t, []any{"cancelled", "", 0}, []any{st, r, c})
	st, r, c = s.Order("declined")
	assert.Equal(t, []any{"cancelled", "released", 0}, []any{st, r, c}, "the compensation: inventory released")
	assert.Equal(t, []string{OrderCreated, InventoryReserved, PaymentCharged, OrderConfirmed}, dedupe(traces["ok"]))
	assert.Equal(t, []string{OrderCreated, InventoryRejected, OrderCancelled}, dedupe(traces["no-stock"]))
	assert.Equal(t, []string{OrderCreated, InventoryReserved, PaymentDeclined, InventoryReleased, OrderCancelled}, dedupe(traces["declined"]))
}

func dedupe(types []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, ty := range types {
		if !seen[ty] {
			seen[ty] = true
			out = append(out, ty)
		}
	}
	return out
}

// The flow, its failures and their compensation, on the in-process bus.
func TestChoreography(t *testing.T) {
	s, traces := flow(t, NewMemory(), false)
	checkFlow(t, s, traces)
	assert.Zero(t, s.Duplicates)
}

// Every event delivered twice: the handlers' dedupe by event id keeps one
// charge, one reservation and one cancellation per order.
func TestChoreographyAtLeastOnce(t *testing.T) {
	s, traces := flow(t, NewMemory(), true)
	checkFlow(t, s, traces)
	assert.Positive(t, s.Duplicates)
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(Created("o", 1, "").Marshal())
	f.Add([]byte(`{"ID":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			return
		}
		again, err := Unmarshal(e.Marshal())
		require.NoError(t, err)
		assert.Equal(t, e.ID, again.ID)
		NewState().React(e) // any decoded event is handled without a panic
	})
}
