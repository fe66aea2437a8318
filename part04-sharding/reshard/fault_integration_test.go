//go:build integration

package reshard

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// TestFaultResharderKilledMidBackfill and TestFaultResharderKilledMidCatchUp
// run the resharding in a child process and SIGKILL it: after its first
// backfill batch, and after it copied a catch-up round's changes but before
// it confirmed the slot past them. A new Run resumes from the catalog's
// state (the backfill cursor, the slot's confirmed position) and finishes,
// with the writer writing throughout: nothing lost, nothing duplicated.
func TestFaultResharderKilledMidBackfill(t *testing.T) {
	killChildAt(t, "backfill", "backfill")
}

func TestFaultResharderKilledMidCatchUp(t *testing.T) {
	killChildAt(t, "unconfirmed", "catchup")
}

func killChildAt(t *testing.T, hold, phase string) {
	ctx := context.Background()
	r := newRig(t, 3000)
	o := r.online()
	require.NoError(t, o.Begin(ctx, JumpSpec(3)))
	stop := r.startWriter()
	defer stop()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RESHARD_CHILD="+strings.Join(r.names, ","), "RESHARD_CHILD_HOLD="+hold)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var seen []string
	deadline := time.After(2 * time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the child ended before holding: %v", seen)
			seen = append(seen, l)
			if l == "holding" {
				break wait
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			require.FailNow(t, "the child never reached "+hold, "%d lines, by phase %v, the last: %v", len(seen), phases(seen), seen[max(0, len(seen)-20):])
		}
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	for range lines { // drain until the pipe closes
	}
	st, found, err := o.load(ctx)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, phase, st.phase, "killed mid-%s", phase)
	time.Sleep(200 * time.Millisecond) // the writer keeps going while no resharder runs

	// The killed child's backend holds the slot until PostgreSQL notices its
	// connection ended: Run resumes past that (SQLSTATE 55006) by itself.
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rep, err := o.Run(rctx)
	require.NoError(t, err)
	stop()
	t.Logf("killed at %q after %d lines; resumed (%d resumes): copied %d in all, applied %d; %s", hold, len(seen), rep.Resumes, rep.Copied, rep.Applied, r.verify(t))
}

// phases counts the child's progress lines by their first word.
func phases(lines []string) map[string]int {
	n := map[string]int{}
	for _, l := range lines {
		w, _, _ := strings.Cut(l, " ")
		n[w]++
	}
	return n
}

// TestFaultPostgresPausedDuringCutover freezes PostgreSQL (SIGSTOP to every
// process, stack.Pause) while the cutover holds both fences. The attempt
// times out, its fences roll back when the server resumes, and the next
// attempt completes. Writes while the server is frozen fail with an error
// naming the key (their outcome is in doubt and the ledger accepts either);
// every acknowledged write is where the new routing says, once.
func TestFaultPostgresPausedDuringCutover(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 3000)
	o := r.online()
	o.StepTimeout = 2 * time.Second
	fenced, goOn, retried := make(chan struct{}), make(chan struct{}), make(chan error, 100)
	first := true
	o.Progress = func(e Event) {
		switch {
		case e.Phase == "fenced" && e.Shard == 1 && first:
			first = false
			close(fenced)
			<-goOn
		case e.Phase == "retry":
			retried <- e.Err
		}
	}
	require.NoError(t, o.Begin(ctx, JumpSpec(3)))
	stop := r.startWriter()
	defer stop()
	type result struct {
		rep Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := o.Run(ctx)
		done <- result{rep, err}
	}()
	select {
	case <-fenced:
	case <-time.After(2 * time.Minute):
		require.FailNow(t, "the cutover never took the fences")
	}
	stack.Pause(t, string(stack.Postgres))
	close(goOn)
	select {
	case err := <-retried:
		assert.Error(t, err, "the attempt on a frozen server failed")
	case <-time.After(time.Minute):
		require.FailNow(t, "the cutover attempt did not end while PostgreSQL was frozen")
	}
	time.Sleep(time.Second) // writes time out meanwhile
	stack.Resume(t, string(stack.Postgres))
	var res result
	select {
	case res = <-done:
	case <-time.After(2 * time.Minute):
		require.FailNow(t, "the resharding did not finish after PostgreSQL resumed")
	}
	require.NoError(t, res.err)
	stop()
	assert.GreaterOrEqual(t, res.rep.Attempts, 2)
	assert.Positive(t, r.load.Failed, "writes failed while the server was frozen")
	t.Logf("cutover attempts %d, freeze %v (PostgreSQL frozen in it); %s", res.rep.Attempts, res.rep.Freeze, r.verify(t))
}

// TestFaultPostgresKilledDuringOnlineReshard kills PostgreSQL (SIGKILL, crash
// recovery on restart) at each phase of a resharding in progress: after a
// backfill batch, after a catch-up round copied changes but before the slot
// was confirmed past them, while the cutover holds the fences, and after the
// cleanup's first delete. The pools never ping, so every connection they
// hand out first after the restart is one the kill closed. Run carries on
// from the catalog's state and finishes; the writer writes throughout (its
// writes during the outage fail and are in doubt); nothing acknowledged is
// lost, nothing is on two shards or the wrong one.
func TestFaultPostgresKilledDuringOnlineReshard(t *testing.T) {
	neverPing := func(c *pgxpool.Config) {
		c.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	}
	for _, at := range []struct{ phase, resumes string }{
		{"backfill", "backfill"}, {"unconfirmed", "catchup"}, {"fenced", "cutover"}, {"cleanup", "cleanup"},
	} {
		t.Run(at.phase, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, 3000, neverPing)
			o := r.online()
			o.Pause = 5 * time.Millisecond
			held, goOn := make(chan struct{}), make(chan struct{})
			first := true
			var resumed []error
			o.Progress = func(e Event) {
				switch {
				case first && e.Phase == at.phase && (e.N > 0 || e.Phase == "fenced" && e.Shard == 1):
					first = false
					close(held)
					<-goOn
				case e.Phase == "resume":
					resumed = append(resumed, e.Err)
				}
			}
			require.NoError(t, o.Begin(ctx, JumpSpec(3)))
			stop := r.startWriter()
			defer stop()
			type result struct {
				rep Report
				err error
			}
			done := make(chan result, 1)
			rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			go func() {
				rep, err := o.Run(rctx)
				done <- result{rep, err}
			}()
			select {
			case <-held:
			case res := <-done:
				require.FailNow(t, "the resharding ended before "+at.phase, "%+v", res)
			case <-time.After(2 * time.Minute):
				require.FailNow(t, "the resharding never reached "+at.phase)
			}
			st, found, err := o.load(ctx)
			require.NoError(t, err)
			require.True(t, found)
			assert.Equal(t, at.resumes, st.phase)
			stack.Kill(t, string(stack.Postgres))
			stack.Restart(t, string(stack.Postgres))
			close(goOn)
			var res result
			select {
			case res = <-done:
			case <-time.After(3 * time.Minute):
				require.FailNow(t, "the resharding did not finish after PostgreSQL came back")
			}
			require.NoError(t, res.err, "the resharding carries on after the restart")
			stop()
			t.Logf("killed at %s: resumed %d times (%v), copied %d, applied %d, cutover attempts %d; %s",
				at.phase, len(resumed), resumed, res.rep.Copied, res.rep.Applied, res.rep.Attempts, r.verify(t))
		})
	}
}

// TestFaultWriterFirstWriteAfterPostgresRestart kills PostgreSQL under the
// writer's pools full of idle connections that are never pinged, and
// restarts it. A write's transaction that fails on a broken connection
// before its COMMIT was sent cannot have committed, so the writer runs it
// once more on a new connection: the first write after the restart lands,
// once.
func TestFaultWriterFirstWriteAfterPostgresRestart(t *testing.T) {
	ctx := context.Background()
	const conns = 4
	r := newRig(t, 10, func(c *pgxpool.Config) {
		c.MaxConns = conns
		c.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	})
	for _, p := range r.shards[:2] { // every connection open and idle
		var held []*pgxpool.Conn
		for range conns {
			cn, err := p.Acquire(ctx)
			require.NoError(t, err)
			held = append(held, cn)
		}
		for _, cn := range held {
			cn.Release()
		}
	}
	stack.Kill(t, string(stack.Postgres))
	stack.Restart(t, string(stack.Postgres))
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	first := map[int]int64{} // a preloaded key on each shard
	for id := int64(10); id >= 1; id-- {
		s, err := shard.Jump{N: 2}.Route(ctx, id)
		require.NoError(t, err)
		first[s] = id
	}
	require.Len(t, first, 2, "a key on each shard")
	for _, id := range first {
		u := shard.User{ID: id, Name: "after-restart", Score: 7}
		require.NoError(t, r.load.W.Put(wctx, u), "the first write after the restart on its shard")
	}
	var gone int64 = 5
	if gone == first[0] || gone == first[1] {
		gone = 6
	}
	require.NoError(t, r.load.W.Delete(wctx, gone), "a delete too")
	layout, err := Check(ctx, r.shards[:2], shard.Jump{N: 2})
	require.NoError(t, err)
	for _, id := range first {
		assert.Equal(t, shard.User{ID: id, Name: "after-restart", Score: 7}, layout.Users[id])
	}
	assert.NotContains(t, layout.Users, gone)
	assert.EqualValues(t, 9, layout.Rows)
	assert.Zero(t, layout.Duplicated)
	assert.Zero(t, layout.Misplaced)
}
