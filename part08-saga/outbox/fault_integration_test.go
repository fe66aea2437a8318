//go:build integration

package outbox

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// walSenderTimeout is the replication session's wal_sender_timeout in the
// fault tests: PostgreSQL's default is a minute; a short one makes a stall
// that outlasts it quick to reproduce.
const walSenderTimeout = 2 * time.Second

// Kafka paused (a stall, not a crash) under each relay while the application
// keeps writing, for three times the walsender's timeout: the relays wait,
// and once Kafka answers again every event arrives, in order. Before, the CDC
// relay sat in its Kafka write without a word to PostgreSQL, the walsender
// ended the replication connection ("terminating walsender process due to
// replication timeout"), and the relay stopped when Kafka came back. Now it
// keeps sending standby status updates while it waits, and reconnects to the
// slot if the connection is lost anyway.
func TestFaultKafkaPausedUnderRelay(t *testing.T) {
	for _, kind := range []string{"poll", "cdc"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			w := NewWriter(stack.KafkaBrokers())
			defer func() { assert.NoError(t, CloseWriter(w)) }()
			relay := f.relayOf(t, kind, w, withOptions(stack.DatabaseURL(), "-c wal_sender_timeout="+walSenderTimeout.String()))
			var retried atomic.Int32
			switch r := relay.(type) {
			case *CDC:
				r.Retried = func(err error) { retried.Add(1); t.Logf("CDC relay reconnects after: %v", err) }
			case *Poller:
				r.Retried = func(err error) { retried.Add(1); t.Logf("poller retries after: %v", err) }
			}
			stopped := runRelay(t, relay)
			load := Load{Table: f.table, AggregateType: f.aggType, Aggregates: 10, PerAggregate: 20, PerTx: 5}
			n, err := load.Run(t.Context(), f.pool)
			require.NoError(t, err)
			first := consume(t, Topic(f.aggType), n, stopped)

			stack.Pause(t, "kafka")
			load.First = load.PerAggregate // 200 more
			more, err := load.Run(t.Context(), f.pool)
			require.NoError(t, err)
			select { // the stall: outlast the walsender's timeout
			case err := <-stopped:
				require.FailNow(t, "the relay stopped while Kafka was paused", "%v", err)
			case <-time.After(3 * walSenderTimeout):
			}
			stack.Resume(t, "kafka")
			all := consume(t, Topic(f.aggType), n+more, stopped)
			t.Logf("%s relay: %d events before the pause, %d in all, %d duplicates", kind, first.Distinct(), all.Distinct(), all.Duplicates)
			assert.Zero(t, all.OutOfOrder, "per-aggregate order")
			if kind == "cdc" {
				assert.Zero(t, retried.Load(), "the replication connection outlived the stall")
			}
		})
	}
}

// PostgreSQL killed and restarted under each relay, and paused (a stall)
// while the application writes: the relays reconnect (the CDC relay to its
// slot, which survives the crash) and every event arrives, in order. Before,
// either relay returned its first connection error and stopped.
//
// After the kill, the pool (the poller's and the application's) never pings
// the connections it hands out, so every idle one is certainly dead when the
// application writes at once, as pgxpool's are for a second after a restart
// quicker than that (CI restarts PostgreSQL in well under a second). Before,
// the application's first transaction failed with "unexpected EOF" whenever
// the restart beat that second.
func TestFaultPostgresUnderRelay(t *testing.T) {
	for _, kind := range []string{"poll", "cdc"} {
		for _, fault := range []string{"kill", "pause"} {
			t.Run(kind+"/"+fault, func(t *testing.T) {
				f := newFixture(t)
				if fault == "kill" {
					f.pool = poolThatNeverPings(t)
				}
				w := NewWriter(stack.KafkaBrokers())
				defer func() { assert.NoError(t, CloseWriter(w)) }()
				relay := f.relayOf(t, kind, w, stack.DatabaseURL())
				stopped := runRelay(t, relay)
				load := Load{Table: f.table, AggregateType: f.aggType, Aggregates: 10, PerAggregate: 20, PerTx: 5}
				n, err := load.Run(t.Context(), f.pool)
				require.NoError(t, err)
				consume(t, Topic(f.aggType), n, stopped)

				load.First = load.PerAggregate
				var more int
				if fault == "kill" {
					holdIdle(t, f.pool)
					stack.Kill(t, "postgres")
					stack.Restart(t, "postgres")
					more, err = load.Run(t.Context(), f.pool)
					require.NoError(t, err)
				} else {
					wrote := make(chan error, 1)
					go func() {
						var err error
						more, err = load.Run(t.Context(), f.pool)
						wrote <- err
					}()
					stack.Pause(t, "postgres")
					select { // the stall: outlast a walsender's timeout
					case err := <-stopped:
						require.FailNow(t, "the relay stopped while PostgreSQL was paused", "%v", err)
					case <-time.After(3 * walSenderTimeout):
					}
					stack.Resume(t, "postgres")
					select {
					case err := <-wrote:
						require.NoError(t, err)
					case <-time.After(2 * time.Minute):
						require.FailNow(t, "the writer did not finish after the resume")
					}
				}
				all := consume(t, Topic(f.aggType), n+more, stopped)
				t.Logf("%s relay, PostgreSQL %s: %d events in all, %d duplicates", kind, fault, all.Distinct(), all.Duplicates)
				assert.Zero(t, all.OutOfOrder, "per-aggregate order")
			})
		}
	}
}

// poolThatNeverPings is a pool on the stack's PostgreSQL that hands out its
// idle connections without pinging them, whatever their idle time.
func poolThatNeverPings(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(stack.DatabaseURL())
	require.NoError(t, err)
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// holdIdle fills pool with idle connections: every one it can open, opened
// at once and released.
func holdIdle(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	conns := make([]*pgxpool.Conn, pool.Config().MaxConns)
	for i := range conns {
		c, err := pool.Acquire(t.Context())
		require.NoError(t, err)
		conns[i] = c
	}
	for _, c := range conns {
		c.Release()
	}
}
