//go:build integration

package lock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// raftCluster is a three-member etcd cluster this test starts on free
// loopback ports, with its data under t.TempDir() and every member in its own
// process group, killed at cleanup.
type raftCluster struct {
	t       *testing.T
	bin     string
	members []*raftMember
}

type raftMember struct {
	name, client, peer, dir string
	cmd                     *exec.Cmd
	paused                  bool // SIGSTOPped: it runs no code and answers nothing
}

// etcdBinary finds the etcd server scripts/stack builds into GOPATH/bin.
func etcdBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "etcd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	stack.SkipOrFail(t, "no etcd binary in PATH or GOPATH/bin; `scripts/stack install` builds it")
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func startRaftCluster(t *testing.T) *raftCluster {
	c := &raftCluster{t: t, bin: etcdBinary(t)}
	for i := range 3 {
		m := &raftMember{name: fmt.Sprintf("m%d", i+1), client: "http://" + freePort(t), peer: "http://" + freePort(t), dir: filepath.Join(t.TempDir(), "data")}
		c.members = append(c.members, m)
	}
	t.Cleanup(func() {
		for i := range c.members {
			c.kill(i)
		}
	})
	for i := range c.members {
		c.start(i, "new", c.initialCluster())
	}
	c.waitLeader(nil)
	return c
}

func (c *raftCluster) initialCluster() string {
	var s []string
	for _, m := range c.members {
		s = append(s, m.name+"="+m.peer)
	}
	return strings.Join(s, ",")
}

// start runs member i; state is "new" for the first start, "existing" after.
func (c *raftCluster) start(i int, state, initial string) {
	m := c.members[i]
	log, err := os.OpenFile(filepath.Join(filepath.Dir(m.dir), "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(c.t, err)
	defer log.Close()
	m.cmd = exec.Command(c.bin, "--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", initial, "--initial-cluster-state", state, "--initial-cluster-token", "part06-raft",
		"--log-level", "warn")
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: the kill reaches it and only it
	require.NoError(c.t, m.cmd.Start())
}

// signal sends sig to member i's process group.
func (c *raftCluster) signal(i int, sig syscall.Signal) {
	m := c.members[i]
	require.NotNil(c.t, m.cmd, "member %s is not running", m.name)
	require.NoError(c.t, syscall.Kill(-m.cmd.Process.Pid, sig))
	m.paused = sig == syscall.SIGSTOP
}

// kill SIGKILLs member i's process group and reaps it.
func (c *raftCluster) kill(i int) {
	m := c.members[i]
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	_ = m.cmd.Wait()
	m.cmd = nil
}

func (c *raftCluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, strings.TrimPrefix(m.client, "http://"))
	}
	return eps
}

func (c *raftCluster) client(endpoints ...string) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	require.NoError(c.t, err)
	c.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// status asks member i who leads; ok is false if it does not answer or knows
// no leader.
func (c *raftCluster) status(cli *clientv3.Client, i int) (leader, self uint64, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := cli.Status(ctx, strings.TrimPrefix(c.members[i].client, "http://"))
	if err != nil || s.Leader == 0 {
		return 0, 0, false
	}
	return s.Leader, s.Header.MemberId, true
}

// waitLeader waits until every running member agrees on a leader that is not
// excluded, and returns its index.
func (c *raftCluster) waitLeader(exclude []int) int {
	cli := c.client(c.endpoints()...)
	leader := -1
	require.Eventually(c.t, func() bool {
		var agreed uint64
		ids := map[uint64]int{}
		for i, m := range c.members {
			if m.cmd == nil || m.paused {
				continue
			}
			l, self, ok := c.status(cli, i)
			if !ok || (agreed != 0 && l != agreed) {
				return false
			}
			agreed, ids[self] = l, i
		}
		i, ok := ids[agreed]
		if !ok || slices.Contains(exclude, i) {
			return false
		}
		leader = i
		return true
	}, 60*time.Second, 50*time.Millisecond, "a leader all running members agree on")
	return leader
}

// TestFaultRaftLeaderAndQuorum runs the etcd lock on a real three-member
// cluster. Killing the leader while a lock is held changes nothing a client
// sees: the lease lives on in the new leader, the holder keeps its context,
// and the next waiter still waits. With two of three members dead there is
// no quorum and no lock is granted; with them back, locking resumes and the
// tokens keep increasing.
func TestFaultRaftLeaderAndQuorum(t *testing.T) {
	c := startRaftCluster(t)
	e := newEtcd(t, c.client(c.endpoints()...))
	const ttl = 6 * time.Second
	res := uniqueName(t)

	type holder struct {
		token     chan int64
		release   chan struct{}
		cancelled chan struct{}
		done      chan error
	}
	hold := func() *holder {
		h := &holder{make(chan int64, 1), make(chan struct{}), make(chan struct{}), make(chan error, 1)}
		go func() {
			h.done <- e.ExecuteWithLock(t.Context(), res, ttl, func(ctx context.Context, token int64) error {
				h.token <- token
				stop := context.AfterFunc(ctx, func() { close(h.cancelled) })
				defer stop()
				<-h.release
				return nil
			})
		}()
		return h
	}
	receive := func(ch chan int64, what string) int64 {
		select {
		case v := <-ch:
			return v
		case <-time.After(30 * time.Second):
			require.FailNow(t, what)
		}
		return 0
	}

	first := hold()
	tokenH := receive(first.token, "the first holder never got the lock")
	waiter := hold()
	cli := c.client(c.endpoints()...)
	require.Eventually(t, func() bool {
		resp, err := cli.Get(t.Context(), "/locks/"+res+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 2
	}, 10*time.Second, 10*time.Millisecond, "the waiter queued its key")

	leader := c.waitLeader(nil)
	c.kill(leader)
	killed := time.Now()
	next := c.waitLeader([]int{leader})
	t.Logf("leader m%d killed; m%d leads after %v", leader+1, next+1, time.Since(killed).Round(time.Millisecond))
	// Longer than the TTL: a lease the new leader did not keep would be gone.
	time.Sleep(ttl + 2*time.Second)
	select {
	case <-first.cancelled:
		require.FailNow(t, "the holder lost its lock when the leader died")
	default:
	}
	select {
	case tok := <-waiter.token:
		require.FailNowf(t, "the waiter got the lock while it was held", "token %d", tok)
	default:
	}

	close(first.release)
	require.NoError(t, <-first.done)
	tokenW := receive(waiter.token, "the waiter never got the released lock")
	assert.Greater(t, tokenW, tokenH)
	close(waiter.release)
	require.NoError(t, <-waiter.done)

	// Two of three down: no quorum, no leader, no lock.
	other := 3 - leader - next
	c.kill(next)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	start := time.Now()
	err := e.ExecuteWithLock(ctx, res, ttl, func(context.Context, int64) error {
		t.Error("a lock granted without a quorum")
		return nil
	})
	cancel()
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotAcquired), "%v", err)
	t.Logf("one member of three (m%d): %v after %v", other+1, err, time.Since(start).Round(time.Millisecond))

	// Back to three: the lock works again, tokens above everything before.
	for _, i := range []int{leader, next} {
		c.start(i, "existing", c.initialCluster())
	}
	c.waitLeader(nil)
	ctx, cancel = context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, e.ExecuteWithLock(ctx, res, ttl, func(_ context.Context, token int64) error {
		assert.Greater(t, token, tokenW)
		return nil
	}))
}

// TestFaultRaftLeaseIDsAreNotFencingTokens: "etcd lease revision numbers are
// globally monotonically increasing — use these as fencing tokens". Leases
// have IDs, not revisions, and the member that receives the Grant makes the
// ID from its own member ID (high bits), the clock and a counter: a lease
// granted later through another member can have a lower ID. The lock key's
// create revision, which Raft orders, increases.
func TestFaultRaftLeaseIDsAreNotFencingTokens(t *testing.T) {
	c := startRaftCluster(t)
	cli := c.client(c.endpoints()...)
	ml, err := cli.MemberList(t.Context())
	require.NoError(t, err)
	prefix := func(id uint64) uint64 { return (id << 48) & (1<<63 - 1) } // the ID's high bits, as the member makes them
	byClient := map[string]uint64{}
	for _, m := range ml.Members {
		byClient[m.ClientURLs[0]] = m.ID
	}
	hi, lo := c.members[0], c.members[0]
	for _, m := range c.members {
		if prefix(byClient[m.client]) > prefix(byClient[hi.client]) {
			hi = m
		}
		if prefix(byClient[m.client]) < prefix(byClient[lo.client]) {
			lo = m
		}
	}
	require.NotEqual(t, prefix(byClient[hi.client]), prefix(byClient[lo.client]), "three members with one ID prefix")
	var ids, revs []int64
	for _, m := range []*raftMember{hi, lo} { // first through hi, then through lo
		one := c.client(strings.TrimPrefix(m.client, "http://"))
		g, err := one.Grant(t.Context(), 10)
		require.NoError(t, err)
		put, err := one.Put(t.Context(), "/"+uniqueName(t), "", clientv3.WithLease(g.ID))
		require.NoError(t, err)
		ids, revs = append(ids, int64(g.ID)), append(revs, put.Header.Revision)
	}
	t.Logf("lease IDs in grant order: %x, %x; revisions: %d, %d", ids[0], ids[1], revs[0], revs[1])
	assert.Less(t, ids[1], ids[0], "the later lease has the lower ID")
	assert.Greater(t, revs[1], revs[0], "revisions follow the order of the writes")
}

// leaderClaim is one member's answer: who it says leads, in which term, and
// whether that is itself.
type leaderClaim struct {
	member       int
	leader, self uint64
	term         uint64
}

// claims asks every member that is not paused who leads.
func (c *raftCluster) claims(cli *clientv3.Client) []leaderClaim {
	var out []leaderClaim
	for i, m := range c.members {
		if m.cmd == nil || m.paused {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, err := cli.Status(ctx, strings.TrimPrefix(m.client, "http://"))
		cancel()
		if err == nil {
			out = append(out, leaderClaim{i, s.Leader, s.Header.MemberId, s.RaftTerm})
		}
	}
	return out
}

// TestFaultRaftPausedLeader: "Raft guarantees only one leader exists"; "a
// partitioned leader steps down". The leader is SIGSTOPped (cut off: it runs
// nothing, answers nothing) while the test samples every member's view:
// the other two elect a leader in a higher term and grant a lock through it;
// when the old leader resumes it follows the new one. At no sample do two
// members claim to lead in the same term. (Two can claim leadership at one
// moment in different terms: a resumed leader believes it leads until it
// hears the higher term. That is what "one leader" means in Raft: one per
// term, and a stale one cannot commit.)
func TestFaultRaftPausedLeader(t *testing.T) {
	c := startRaftCluster(t)
	cli := c.client(c.endpoints()...)
	var leader int
	var oldTerm uint64
	require.Eventually(t, func() bool { // all three agree on the leader and its term
		cl := c.claims(cli)
		if len(cl) != 3 {
			return false
		}
		for _, x := range cl {
			if x.term != cl[0].term || x.leader != cl[0].leader || x.leader == 0 {
				return false
			}
			if x.leader == x.self {
				leader = x.member
			}
		}
		oldTerm = cl[0].term
		return true
	}, 60*time.Second, 20*time.Millisecond, "a settled leader and term")

	var samples int
	check := func() []leaderClaim {
		cl := c.claims(cli)
		samples++
		self := map[uint64][]int{} // term → members claiming to lead in it
		for _, x := range cl {
			if x.leader == x.self {
				self[x.term] = append(self[x.term], x.member)
			}
		}
		for term, ms := range self {
			assert.LessOrEqual(t, len(ms), 1, "term %d has leaders %v", term, ms)
		}
		return cl
	}

	c.signal(leader, syscall.SIGSTOP)
	paused := time.Now()
	t.Cleanup(func() {
		if c.members[leader].paused && c.members[leader].cmd != nil {
			c.signal(leader, syscall.SIGCONT)
		}
	})
	var next int
	var newTerm uint64
	require.Eventually(t, func() bool {
		cl := check()
		if len(cl) != 2 || cl[0].leader == 0 || cl[0].leader != cl[1].leader || cl[0].term != cl[1].term {
			return false
		}
		for _, x := range cl {
			if x.leader == x.self {
				next, newTerm = x.member, x.term
				return true
			}
		}
		return false
	}, 60*time.Second, 20*time.Millisecond, "the two members left elect a leader")
	t.Logf("leader m%d paused in term %d; m%d leads in term %d after %v", leader+1, oldTerm, next+1, newTerm, time.Since(paused).Round(time.Millisecond))
	assert.Greater(t, newTerm, oldTerm)

	// The majority side grants locks while the old leader is cut off.
	majority := c.client(strings.TrimPrefix(c.members[next].client, "http://"))
	e := newEtcd(t, majority)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, e.ExecuteWithLock(ctx, uniqueName(t), 2*time.Second, func(context.Context, int64) error { return nil }))

	c.signal(leader, syscall.SIGCONT)
	resumed := time.Now()
	require.Eventually(t, func() bool {
		cl := check()
		if len(cl) != 3 {
			return false
		}
		for _, x := range cl {
			if x.member == leader && (x.leader == x.self || x.term < newTerm) {
				return false // still believes it leads, or has not heard the new term
			}
		}
		return cl[0].leader == cl[1].leader && cl[1].leader == cl[2].leader
	}, 60*time.Second, 20*time.Millisecond, "the old leader follows the new one")
	t.Logf("m%d resumed: following after %v; %d samples of all members, never two leaders in one term", leader+1, time.Since(resumed).Round(time.Millisecond), samples)
}
