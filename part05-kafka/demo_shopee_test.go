package main

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part05-kafka/pool"
)

// The arithmetic of -mode shopee, checked against the real pool at a tenth
// of the case study's scale on a fake clock: 833.3 orders/s arrive for a
// minute into a log (Kafka), a fetch loop submits them to 50 workers whose
// writes take 100 ms (500/s) behind a buffer of 1,000. At the end of the
// burst the backlog is what peak computes, the buffer is full, and the last
// order is written when peak says.
func TestShopeeModelMatchesThePool(t *testing.T) {
	const scale = 10
	m := peak{in: shopeeOrdersPerMin / 60.0 / scale, out: shopeeDBWritesPerS / scale}
	synctest.Test(t, func(t *testing.T) {
		var written atomic.Int64
		p, err := pool.New(t.Context(), pool.Config[int]{Workers: shopeeWorkers, Buffer: shopeeBuffer / scale},
			func(context.Context, int) error { time.Sleep(100 * time.Millisecond); written.Add(1); return nil })
		require.NoError(t, err)
		log := make(chan int, shopeeOrdersPerMin) // Kafka: takes the whole burst
		fetched := make(chan struct{})
		go func() { // the consumer's fetch loop
			defer close(fetched)
			for o := range log {
				if p.Submit(context.Background(), o) != nil {
					return
				}
			}
		}()
		start := time.Now()
		var due float64
		arrived := 0
		for time.Since(start) < time.Minute { // the burst, in 10 ms ticks
			due += m.in / 100
			for ; float64(arrived) < due; arrived++ {
				log <- arrived
			}
			time.Sleep(10 * time.Millisecond)
		}
		backlog := float64(int64(arrived) - written.Load())
		inKafka := len(log)
		close(log)
		<-fetched
		require.NoError(t, p.Shutdown(context.Background()))
		last := time.Since(start)
		t.Logf("1/%d scale: arrived %d, written %d during the burst; backlog %.0f (model %.0f), %d of it in Kafka; last write at %v (model %v)",
			scale, arrived, int64(arrived)-int64(backlog), backlog, m.backlogAfter(time.Minute), inKafka, last, time.Minute+m.drain(m.backlogAfter(time.Minute)))
		assert.InDelta(t, m.backlogAfter(time.Minute), backlog, 0.01*m.backlogAfter(time.Minute))
		assert.InDelta(t, backlog-shopeeBuffer/scale-shopeeWorkers, float64(inKafka), 10, "the rest waits in Kafka, past the full buffer and the writes in flight")
		assert.InDelta(t, (time.Minute + m.drain(m.backlogAfter(time.Minute))).Seconds(), last.Seconds(), 0.5)
		assert.Equal(t, int64(arrived), written.Load())
	})
}
