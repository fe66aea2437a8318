//go:build integration

package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part05-kafka/exactlyonce"
	"github.com/sysdesign-masterclass/golang/part05-kafka/internal/kafkatest"
	"github.com/sysdesign-masterclass/golang/part05-kafka/orders"
	"github.com/sysdesign-masterclass/golang/part05-kafka/pipeline"
)

// TestFaultConsumerKilled runs the consumer as a child process and SIGKILLs
// it 12 times while 6,000 events arrive (500 more before each child
// starts): a third of the kills come from the child itself right after a
// transaction committed and before the offset reached the group (the window
// the article's diagram shows), a third while it queues a batch inside an
// open transaction, a third from the parent at a random moment within 300 ms
// of the child's first committed batch (fetching, mid-transaction, between
// commits, ...). After
// a last child has applied everything, PostgreSQL must hold every event
// exactly once, each order in sequence.
func TestFaultConsumerKilled(t *testing.T) {
	const partitions, orderCount, n, kills = 4, 200, 6000, 12
	topic := kafkatest.Topic(t, partitions)
	db := kafkatest.DB(t)
	prefix := kafkatest.Name("ord")
	group := kafkatest.Name("g")
	events := kafkatest.Events(prefix, orderCount, n)

	w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: stack.KafkaBrokers(), Topic: topic})
	defer closeWriter(w)
	produce := func(from, to int) { // each child meets new events
		msgs := make([]kafka.Message, 0, to-from)
		for _, e := range events[from:to] {
			e.At = time.Now()
			msgs = append(msgs, e.Message())
		}
		require.NoError(t, w.WriteMessages(t.Context(), msgs...))
	}

	child := func(kill string) (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childTopic+"="+topic, childGroup+"="+group, childKill+"="+kill)
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		return cmd, out
	}
	points := map[string]int{}
	for i := range kills {
		produce(i*n/kills, (i+1)*n/kills)
		var kill string
		switch i % 3 {
		case 0:
			kill = fmt.Sprintf("after-apply:%d", 1+rand.IntN(3))
		case 1:
			kill = fmt.Sprintf("mid-batch:%d", 1+rand.IntN(n/kills/2))
		}
		cmd, out := child(kill)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		by, point := "parent", "parent"
		if kill == "" { // wait until it applies, then kill it within 300 ms
			kafkatest.WaitFor(t, time.Minute, func() (bool, string) {
				return strings.Contains(out.String(), "applied"), "the child never applied a batch:\n" + out.String()
			})
			time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		}
		select {
		case err := <-exited: // it killed itself
			require.Error(t, err, "child exited on its own: %s", out)
			require.Contains(t, err.Error(), "signal: killed", "%s", out)
			point, _, _ = strings.Cut(kill, ":")
			by = kill
		case <-time.After(map[bool]time.Duration{true: 0, false: 30 * time.Second}[kill == ""]):
			require.NoError(t, cmd.Process.Kill())
			err := <-exited
			require.ErrorContains(t, err, "signal: killed")
			if kill != "" {
				by = "parent (the child's " + kill + " not reached)"
			}
		}
		points[point]++
		e := kafkatest.Count(t, db, prefix)
		t.Logf("kill %2d by %-40s applied so far %5d, replays %d", i+1, by, e.Distinct, e.Replays)
	}
	cmd, out := child("")
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var e kafkatest.Effects
	kafkatest.WaitFor(t, 3*time.Minute, func() (bool, string) {
		e = kafkatest.Count(t, db, prefix)
		return e.Distinct >= n, fmt.Sprintf("%+v; child output:\n%s", e, out)
	})
	t.Logf("%d events, %d consumer processes SIGKILLed (%v): applied %d, distinct %d, replays (duplicated effects) %d, lost %d, out of order %d",
		n, kills, points, e.Applied, e.Distinct, e.Replays, n-e.Distinct, e.OutOfOrder)
	assert.Equal(t, kafkatest.Effects{Orders: orderCount, Applied: n, Distinct: n}, e, "every event once, each order in sequence")
	stored, err := exactlyonce.New(db, group).Offsets(t.Context(), topic)
	require.NoError(t, err)
	ends, err := pipeline.EndOffsets(t.Context(), stack.KafkaBrokers(), topic, partitions)
	require.NoError(t, err)
	assert.Equal(t, ends, stored)
}

// serviceFault breaks a service while the producer keeps writing and the
// consumer applies. Kafka killed and restarted, or paused and resumed: a
// write that is not acknowledged is counted and written again until it is.
// PostgreSQL killed or paused: the consumer's transactions fail or hang and
// are retried. Every event ends up applied once, in order, none
// dead-lettered; events written twice (acknowledgement lost, the retry wrote
// a second copy) are counted and not applied twice.
func serviceFault(t *testing.T, fault func(t *testing.T)) {
	const partitions, orderCount, n = 4, 100, 5000
	topic := kafkatest.Topic(t, partitions)
	db := kafkatest.DB(t)
	prefix := kafkatest.Name("ord")
	group := kafkatest.Name("g")
	events := kafkatest.Events(prefix, orderCount, n)
	c := &pipeline.Consumer{Brokers: stack.KafkaBrokers(), Group: group, Topic: topic, Store: exactlyonce.New(db, group), Handler: orders.Apply}
	start(t, c)

	var mu sync.Mutex
	var unacked, retried, acked int
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: stack.KafkaBrokers(), Topic: topic, MaxAttempts: 3})
		defer closeWriter(w)
		for i := 0; i < n; i += 50 {
			pending := make([]kafka.Message, 0, 50)
			for _, e := range events[i:min(i+50, n)] {
				e.At = time.Now()
				pending = append(pending, e.Message())
			}
			for try := 0; len(pending) > 0; try++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := w.WriteMessages(ctx, pending...)
				cancel()
				failed := pipeline.Unacked(len(pending), err)
				mu.Lock()
				acked += len(pending) - len(failed)
				if try == 0 {
					unacked += len(failed)
				} else {
					retried += len(pending) - len(failed)
				}
				mu.Unlock()
				next := make([]kafka.Message, 0, len(failed))
				for _, j := range failed {
					next = append(next, pending[j])
				}
				pending = next
				if len(pending) > 0 {
					time.Sleep(200 * time.Millisecond)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	kafkatest.WaitFor(t, time.Minute, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return acked >= n/4, fmt.Sprintf("acked %d", acked)
	})
	fault(t)
	select {
	case <-produced:
	case <-time.After(4 * time.Minute):
		require.FailNow(t, "the producer did not get every event acknowledged")
	}
	e := waitApplied(t, db, prefix, n)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d events: acknowledged at once %d, not acknowledged (reported, written again) %d, acknowledged on a retry %d; "+
		"applied %d, duplicates written by retries and skipped %d, replays %d, out of order %d",
		n, n-unacked, unacked, retried, e.Applied, e.ProdDups, e.Replays, e.OutOfOrder)
	assert.Equal(t, n, acked, "every event acknowledged in the end")
	assert.Equal(t, unacked, retried)
	assert.Equal(t, orderCount, e.Orders)
	assert.Equal(t, n, e.Applied, "each event applied once")
	assert.Equal(t, n, e.Distinct)
	assert.Zero(t, e.Replays)
	assert.Zero(t, e.OutOfOrder)
	assert.Zero(t, c.Stats().Dead.Load(), "an outage is not the messages' fault: nothing dead-lettered")
}

func TestFaultBrokerKilledAndRestarted(t *testing.T) {
	serviceFault(t, func(t *testing.T) {
		stack.Kill(t, "kafka")
		time.Sleep(2 * time.Second) // writes fail meanwhile: connection refused
		stack.Restart(t, "kafka")
	})
}

func TestFaultBrokerPaused(t *testing.T) {
	serviceFault(t, func(t *testing.T) {
		stack.Pause(t, "kafka")
		time.Sleep(8 * time.Second) // writes hang meanwhile and time out after 5 s
		stack.Resume(t, "kafka")
	})
}

// lockedBuffer is a bytes.Buffer a child process writes to while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestFaultPostgresKilledAndRestarted(t *testing.T) {
	serviceFault(t, func(t *testing.T) {
		stack.Kill(t, "postgres")
		time.Sleep(3 * time.Second) // transactions fail meanwhile: connection refused
		stack.Restart(t, "postgres")
	})
}

func TestFaultPostgresPaused(t *testing.T) {
	serviceFault(t, func(t *testing.T) {
		stack.Pause(t, "postgres")
		time.Sleep(5 * time.Second) // transactions hang meanwhile
		stack.Resume(t, "postgres")
	})
}
