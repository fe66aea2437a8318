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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
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
		ch := startChild(t, topic, group, kill)
		cmd, out := ch.cmd, ch.out
		by, point := "parent", "parent"
		if kill == "" { // wait until it applies, then kill it within 300 ms
			kafkatest.WaitFor(t, time.Minute, func() (bool, string) {
				return strings.Contains(out.String(), "applied"), "the child never applied a batch:\n" + out.String()
			})
			time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		}
		select {
		case <-ch.exited: // it killed itself
			require.Error(t, ch.err, "child exited on its own: %s", out)
			require.Contains(t, ch.err.Error(), "signal: killed", "%s", out)
			point, _, _ = strings.Cut(kill, ":")
			by = kill
		case <-time.After(map[bool]time.Duration{true: 0, false: 30 * time.Second}[kill == ""]):
			require.NoError(t, cmd.Process.Kill())
			<-ch.exited
			require.ErrorContains(t, ch.err, "signal: killed")
			if kill != "" {
				by = "parent (the child's " + kill + " not reached)"
			}
		}
		points[point]++
		e := kafkatest.Count(t, db, prefix)
		t.Logf("kill %2d by %-40s applied so far %5d, replays %d", i+1, by, e.Distinct, e.Replays)
	}
	out := startChild(t, topic, group, "").out
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

// A PostgreSQL restart quicker than pgxpool's one-second ping threshold
// leaves the consumer's pool holding dead idle connections that it hands out
// without a ping (CI restarts PostgreSQL in well under a second). The
// consumer's pool here never pings, which makes that window certain: the
// partitions' next transactions begin on dead connections, fail, and are
// retried on new ones (a transaction either committed with its offset or
// not at all, so retrying it is safe). Every event is applied once, the
// first batch after the restart retried at least once.
func TestFaultPostgresRestartedUnderIdleConnections(t *testing.T) {
	const partitions, orderCount, n = 4, 40, 800
	topic := kafkatest.Topic(t, partitions)
	db := kafkatest.DB(t)
	prefix := kafkatest.Name("ord")
	group := kafkatest.Name("g")
	events := kafkatest.Events(prefix, orderCount, n)

	cfg, err := pgxpool.ParseConfig(stack.DatabaseURL())
	require.NoError(t, err)
	cfg.MaxConns = partitions
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close) // after the consumer stops (cleanups run last first)
	c := &pipeline.Consumer{Brokers: stack.KafkaBrokers(), Group: group, Topic: topic, Store: exactlyonce.New(pool, group), Handler: orders.Apply}
	start(t, c)

	produce(t, topic, events[:n/2])
	waitApplied(t, db, prefix, n/2)
	kafkatest.WaitFor(t, time.Minute, func() (bool, string) { // every partition waits in FetchMessage
		s := pool.Stat()
		return s.AcquiredConns() == 0 && s.IdleConns() > 0, fmt.Sprintf("acquired %d, idle %d", s.AcquiredConns(), s.IdleConns())
	})
	idle, retries := pool.Stat().IdleConns(), c.Stats().Retries.Load()

	stack.Kill(t, "postgres")
	stack.Restart(t, "postgres")
	db.Reset() // the test's own pool, which reads the counts, lost its connections too

	produce(t, topic, events[n/2:])
	e := waitApplied(t, db, prefix, n)
	t.Logf("%d idle connections killed under the consumer's pool; transactions retried after the restart: %d; applied %d, distinct %d, replays %d, out of order %d",
		idle, c.Stats().Retries.Load()-retries, e.Applied, e.Distinct, e.Replays, e.OutOfOrder)
	assert.Equal(t, kafkatest.Effects{Orders: orderCount, Applied: n, Distinct: n}, e, "every event once, each order in sequence")
	assert.Greater(t, c.Stats().Retries.Load(), retries, "a transaction began on a dead connection and was retried")
	assert.Zero(t, c.Stats().Dead.Load(), "a dead connection is not the messages' fault: nothing dead-lettered")
	stored, err := exactlyonce.New(db, group).Offsets(t.Context(), topic)
	require.NoError(t, err)
	ends, err := pipeline.EndOffsets(t.Context(), stack.KafkaBrokers(), topic, partitions)
	require.NoError(t, err)
	assert.Equal(t, ends, stored)
}

// child is a consumer process (see consumerChild) of the test binary.
type child struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	app    string        // application_name of its PostgreSQL sessions
	exited chan struct{} // closed when it has exited, with err set
	err    error         // cmd.Wait's

	left                 bool // it left on SIGTERM, having applied and seen:
	applied, generations int64
}

// startChild starts a consumer process of group on topic; kill is its
// P05_KILL. The test's cleanup kills it (and continues it first, if it
// stopped itself) if it is still running.
func startChild(t *testing.T, topic, group, kill string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$"), out: &lockedBuffer{}, app: kafkatest.Name("p05-child"), exited: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), childTopic+"="+topic, childGroup+"="+group, childKill+"="+kill, childApp+"="+c.app)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	require.NoError(t, c.cmd.Start())
	go func() { c.err = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() { _ = c.cmd.Process.Signal(syscall.SIGCONT); _ = c.cmd.Process.Kill(); <-c.exited })
	return c
}

// waitFor waits until the child has printed line.
func (c *child) waitFor(t *testing.T, line string) {
	t.Helper()
	kafkatest.WaitFor(t, 2*time.Minute, func() (bool, string) {
		return strings.Contains(c.out.String(), line+"\n"), "the child has not printed " + line + ":\n" + c.out.String()
	})
}

// leave sends the child SIGTERM, waits for it to leave the group and exit,
// and reads what it applied and how many generations it saw (once).
func (c *child) leave(t *testing.T) {
	t.Helper()
	if c.left {
		return
	}
	c.left = true
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.exited:
		require.NoError(t, c.err, "%s", c.out)
	case <-time.After(2 * time.Minute):
		require.FailNow(t, "the child did not leave within 2 minutes", c.out.String())
	}
	var skipped int64
	out := c.out.String()
	i := strings.LastIndex(out, "left: ")
	require.GreaterOrEqual(t, i, 0, "%s", out)
	_, err := fmt.Sscanf(out[i:], childExit, &c.applied, &skipped, &c.generations)
	require.NoError(t, err, "%s", out)
}

// state is the child's process state from /proc: R, S, T (stopped), ...
func (c *child) state() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return err.Error()
	}
	if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) {
		return string(b[i+2])
	}
	return string(b)
}

// feed produces events to topic in chunks of 100, a chunk every 20 ms, each
// acknowledged before the next; fed says how many are acknowledged so far.
// Errors come back on the returned channel, which closes when all are.
func feed(t *testing.T, topic string, events []orders.Event, fed *atomic.Int64) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	ctx := t.Context()
	go func() {
		defer close(done)
		w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: stack.KafkaBrokers(), Topic: topic})
		defer closeWriter(w)
		for i := 0; i < len(events); i += 100 {
			msgs := make([]kafka.Message, 0, 100)
			for _, e := range events[i:min(i+100, len(events))] {
				e.At = time.Now()
				msgs = append(msgs, e.Message())
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				done <- err
				return
			}
			fed.Add(int64(len(msgs)))
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	}()
	return done
}

func waitFed(t *testing.T, fed *atomic.Int64, n int) {
	t.Helper()
	kafkatest.WaitFor(t, 2*time.Minute, func() (bool, string) {
		return fed.Load() >= int64(n), fmt.Sprintf("%d of %d events acknowledged", fed.Load(), n)
	})
}

// stream is a topic that events are fed to while consumer processes of one
// group apply them.
type stream struct {
	topic, group, prefix      string
	partitions, orderCount, n int
	db                        *pgxpool.Pool
	fed                       atomic.Int64
	fedAll                    <-chan error
}

// newStream creates the topic and starts feeding it n events of orderCount
// orders.
func newStream(t *testing.T, partitions, orderCount, n int) *stream {
	s := &stream{topic: kafkatest.Topic(t, partitions), db: kafkatest.DB(t), prefix: kafkatest.Name("ord"), group: kafkatest.Name("g"),
		partitions: partitions, orderCount: orderCount, n: n}
	s.fedAll = feed(t, s.topic, kafkatest.Events(s.prefix, orderCount, n), &s.fed)
	return s
}

// finish waits until every event is fed and applied, asserts each applied
// once, each order in sequence, the stored offsets at the partitions' ends,
// then makes the children leave and asserts that between them they applied
// each event once.
func (s *stream) finish(t *testing.T, children ...*child) {
	t.Helper()
	require.NoError(t, <-s.fedAll)
	e := waitApplied(t, s.db, s.prefix, s.n)
	t.Logf("%d events: applied %d, distinct %d, replays (duplicated effects) %d, out of order %d", s.n, e.Applied, e.Distinct, e.Replays, e.OutOfOrder)
	assert.Equal(t, kafkatest.Effects{Orders: s.orderCount, Applied: s.n, Distinct: s.n}, e, "every event once, each order in sequence")
	stored, err := exactlyonce.New(s.db, s.group).Offsets(t.Context(), s.topic)
	require.NoError(t, err)
	ends, err := pipeline.EndOffsets(t.Context(), stack.KafkaBrokers(), s.topic, s.partitions)
	require.NoError(t, err)
	assert.Equal(t, ends, stored)
	var sum int64
	for i, c := range children {
		c.leave(t)
		t.Logf("consumer %c applied %d in %d generations", 'A'+i, c.applied, c.generations)
		sum += c.applied
	}
	assert.Equal(t, int64(s.n), sum, "each event applied by one of them")
}

// TestFaultSecondConsumerJoinsMidRun: consumer process A applies a stream
// of events alone; B joins the group mid-stream, so A's partitions are
// revoked (its in-flight transactions cancelled, or finished if their
// COMMIT was sent: what each counts applied is what committed) and split
// between the two;
// then A leaves on SIGTERM and B takes them all, while events keep
// arriving. Every event is applied once, each order in sequence, and both
// processes applied some.
func TestFaultSecondConsumerJoinsMidRun(t *testing.T) {
	s := newStream(t, 4, 200, 6000)
	a := startChild(t, s.topic, s.group, "")
	a.waitFor(t, "applied")
	waitFed(t, &s.fed, s.n/3)
	b := startChild(t, s.topic, s.group, "")
	b.waitFor(t, "applied") // B has partitions: the group rebalanced
	waitFed(t, &s.fed, 2*s.n/3)
	a.leave(t)
	s.finish(t, a, b)
	assert.Positive(t, a.applied)
	assert.Positive(t, b.applied)
	assert.GreaterOrEqual(t, a.generations, int64(2), "A's partitions were reassigned when B joined")
}

// TestFaultConsumerPausedWhileAnotherTakesOver: consumer process A stops
// itself (SIGSTOP, as a long GC pause or a frozen VM would) inside its
// first transaction, before the partition has a stored offset; its session
// expires and B gets every partition. B applies what A does not hold and
// waits on the rows A's open transactions hold; then A wakes up, finishes
// or loses its transactions, learns it was replaced, and rejoins. Nothing
// A had in flight is applied twice: its transaction and B's exclude each
// other on the partition's offset row.
func TestFaultConsumerPausedWhileAnotherTakesOver(t *testing.T) {
	s := newStream(t, 4, 200, 4000)
	waitFed(t, &s.fed, s.n/2)
	a := startChild(t, s.topic, s.group, "stop-mid-batch:1")
	kafkatest.WaitFor(t, 2*time.Minute, func() (bool, string) {
		return a.state() == "T", "A is not stopped (state " + a.state() + "):\n" + a.out.String()
	})
	b := startChild(t, s.topic, s.group, "")
	kafkatest.WaitFor(t, 2*time.Minute, func() (bool, string) { // after A's 6 s session
		if strings.Contains(b.out.String(), "applied\n") {
			return true, ""
		}
		var waiting bool
		err := s.db.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock')`, b.app).Scan(&waiting)
		return err == nil && waiting, fmt.Sprintf("B neither applied nor waits for A's lock (%v):\n%s", err, b.out)
	})
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGCONT))
	s.finish(t, a, b)
}
