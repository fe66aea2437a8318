package partition

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func newCluster(t *testing.T, mode Mode, n int) *Cluster {
	t.Helper()
	c, err := New(mode, n)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustWrite(t *testing.T, c *Cluster, r int, key, data string) Value {
	t.Helper()
	v, err := c.Write(r, key, data)
	if err != nil {
		t.Fatalf("write %s=%s via n%d: %v", key, data, r, err)
	}
	return v
}

func mustRead(t *testing.T, c *Cluster, r int, key string) Value {
	t.Helper()
	v, err := c.Read(r, key)
	if err != nil {
		t.Fatalf("read %s via n%d: %v", key, r, err)
	}
	return v
}

// The Gilbert–Lynch scenario with two replicas: G1 = {n1}, G2 = {n2}.

func TestCPRefusesBothSidesOfATwoReplicaPartition(t *testing.T) {
	t.Parallel()
	c := newCluster(t, CP, 2)
	mustWrite(t, c, 1, "x", "v0")
	if got := mustRead(t, c, 2, "x"); got.Data != "v0" {
		t.Fatalf("before the partition n2 reads %q, want v0", got.Data)
	}

	if err := c.Partition(1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(1, "x", "v1"); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("write in G1 during partition: err = %v, want ErrNoQuorum", err)
	}
	if _, err := c.Read(2, "x"); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("read in G2 during partition: err = %v, want ErrNoQuorum", err)
	}
	// The refused write left no trace anywhere.
	vals, _ := c.Snapshot("x")
	for i, v := range vals {
		if v.Data != "v0" {
			t.Errorf("replica n%d holds %q after a refused write, want v0", i+1, v.Data)
		}
	}

	if conflicts := c.Heal(); len(conflicts) != 0 {
		t.Errorf("CP heal reported conflicts %v", conflicts)
	}
	mustWrite(t, c, 1, "x", "v1")
	if got := mustRead(t, c, 2, "x"); got.Data != "v1" {
		t.Fatalf("after healing n2 reads %q, want v1", got.Data)
	}
}

func TestCPMajoritySideKeepsServing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, CP, 3)
	mustWrite(t, c, 1, "x", "v0")
	if err := c.Partition(3); err != nil { // G1 = {n3} is the minority
		t.Fatal(err)
	}
	mustWrite(t, c, 1, "x", "v1")
	if got := mustRead(t, c, 2, "x"); got.Data != "v1" {
		t.Errorf("majority read = %q, want v1", got.Data)
	}
	if _, err := c.Read(3, "x"); !errors.Is(err, ErrNoQuorum) {
		t.Errorf("minority read: err = %v, want ErrNoQuorum (it would be stale)", err)
	}
	if _, err := c.Write(3, "x", "v2"); !errors.Is(err, ErrNoQuorum) {
		t.Errorf("minority write: err = %v, want ErrNoQuorum", err)
	}
	// n3 really is behind: that is the stale answer CP refused to give.
	vals, _ := c.Snapshot("x")
	if vals[2].Data != "v0" {
		t.Fatalf("minority replica holds %q, want stale v0", vals[2].Data)
	}
	if conflicts := c.Heal(); len(conflicts) != 0 {
		t.Errorf("heal reported conflicts %v; the minority never wrote", conflicts)
	}
	vals, _ = c.Snapshot("x")
	if vals[2].Data != "v1" {
		t.Errorf("after heal the minority holds %q, want v1 (anti-entropy)", vals[2].Data)
	}
}

func TestAPServesStaleDataThenConvergesWithLWW(t *testing.T) {
	t.Parallel()
	c := newCluster(t, AP, 2)
	mustWrite(t, c, 1, "x", "v0")
	if err := c.Partition(1); err != nil {
		t.Fatal(err)
	}

	w1 := mustWrite(t, c, 1, "x", "v1") // write reaches G1 only
	stale := mustRead(t, c, 2, "x")     // read reaches G2
	if stale.Data != "v0" {
		t.Fatalf("G2 read = %q, want the stale v0", stale.Data)
	}
	if !stale.Version.Less(w1.Version) {
		t.Fatalf("stale version %v should be older than %v", stale.Version, w1.Version)
	}
	w2 := mustWrite(t, c, 2, "x", "v2") // concurrent write on the other side
	if w1.Version.Counter != w2.Version.Counter {
		t.Fatalf("concurrent writes got counters %v and %v; the test expects a tie broken by replica", w1.Version, w2.Version)
	}

	conflicts := c.Heal()
	if len(conflicts) != 1 {
		t.Fatalf("conflicts = %v, want exactly one on x", conflicts)
	}
	cf := conflicts[0]
	// Stated rule: higher counter wins, ties go to the higher replica number.
	if cf.Key != "x" || cf.Kept.Data != "v2" || len(cf.Lost) != 1 || cf.Lost[0].Data != "v1" {
		t.Fatalf("conflict = %+v, want x kept v2 (#2@n2) and lost v1 (#2@n1)", cf)
	}
	for r := 1; r <= 2; r++ {
		if got := mustRead(t, c, r, "x"); got != cf.Kept {
			t.Errorf("after heal n%d reads %+v, want %+v", r, got, cf.Kept)
		}
	}
	// A write after the partition supersedes the winner everywhere.
	w3 := mustWrite(t, c, 1, "x", "v3")
	if !cf.Kept.Version.Less(w3.Version) || mustRead(t, c, 2, "x").Data != "v3" {
		t.Errorf("post-heal write %v did not supersede %v everywhere", w3.Version, cf.Kept.Version)
	}
}

func TestAPHigherCounterBeatsReplicaNumber(t *testing.T) {
	t.Parallel()
	c := newCluster(t, AP, 2)
	if err := c.Partition(1); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, 2, "x", "a") // #1@n2
	mustWrite(t, c, 1, "x", "b") // #1@n1
	mustWrite(t, c, 1, "x", "c") // #2@n1: n1 wrote more often, so it wins
	conflicts := c.Heal()
	if len(conflicts) != 1 || conflicts[0].Kept.Data != "c" || conflicts[0].Lost[0].Data != "a" {
		t.Fatalf("conflicts = %+v, want c kept and a lost", conflicts)
	}
	vals, ok := c.Snapshot("x")
	for i := range vals {
		if !ok[i] || vals[i].Data != "c" {
			t.Errorf("replica n%d = %+v, want c", i+1, vals[i])
		}
	}
}

func TestAPKeysWrittenOnOneSideOnlyAreNotConflicts(t *testing.T) {
	t.Parallel()
	c := newCluster(t, AP, 2)
	if err := c.Partition(2); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, 1, "a", "1")
	mustWrite(t, c, 2, "b", "2")
	if _, err := c.Read(2, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("n2 read of a key only G1 has: err = %v, want ErrNotFound", err)
	}
	if conflicts := c.Heal(); len(conflicts) != 0 {
		t.Errorf("conflicts = %v, want none", conflicts)
	}
	if mustRead(t, c, 2, "a").Data != "1" || mustRead(t, c, 1, "b").Data != "2" {
		t.Error("heal did not copy one-sided writes to the other side")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	if _, err := New(Mode(9), 2); err == nil {
		t.Error("New accepted an unknown mode")
	}
	if _, err := New(CP, 0); err == nil {
		t.Error("New accepted zero replicas")
	}
	c := newCluster(t, CP, 2)
	if _, err := c.Write(3, "x", "v"); !errors.Is(err, ErrUnknownReplica) {
		t.Errorf("write via n3 of 2: err = %v, want ErrUnknownReplica", err)
	}
	if err := c.Partition(0); !errors.Is(err, ErrUnknownReplica) {
		t.Errorf("partition of n0: err = %v, want ErrUnknownReplica", err)
	}
	for _, g1 := range [][]int{{}, {1, 2}, {1, 1, 2}} {
		if err := c.Partition(g1...); err == nil {
			t.Errorf("Partition(%v) of 2 replicas = nil, want an error (one side empty)", g1)
		}
	}
	if _, err := c.Read(1, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("read of a missing key: err = %v, want ErrNotFound", err)
	}
	if c.Partitioned() {
		t.Error("a new cluster reports a partition")
	}
}

// TestConcurrentUse lets the race detector look at every public method.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	for _, mode := range []Mode{CP, AP} {
		c := newCluster(t, mode, 3)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 50 {
					r := 1 + (g+i)%3
					_, _ = c.Write(r, "k", fmt.Sprint(g, i))
					_, _ = c.Read(r, "k")
					if i%10 == 0 {
						_ = c.Partition(r)
					}
					if i%10 == 5 {
						c.Heal()
					}
				}
			})
		}
		wg.Wait()
		c.Heal()
		vals, ok := c.Snapshot("k")
		for i := range vals {
			if !ok[i] || vals[i] != vals[0] {
				t.Errorf("%v: replicas diverged after the final heal: %+v", mode, vals)
				break
			}
		}
	}
}
