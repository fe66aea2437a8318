package reshard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// Workload writes through a Writer, one operation at a time (inserts of new
// ids, updates, deletes), and keeps a ledger of what every acknowledged write
// left behind, so Verify can count what a resharding lost. A write that
// failed may or may not have committed (its COMMIT may have been the message
// that went unanswered): its id is then accepted in either state, and not
// written again.
type Workload struct {
	W         *Writer
	NextID    int64         // the first id inserts use
	OpTimeout time.Duration // per operation, retries included (default 10 s)
	Rand      *rand.Rand

	ledger map[int64]entry
	live   []int64 // ids that exist and are not in doubt, for updates and deletes

	Acked, Failed int64
	FirstErrors   []error         // the first few failures, for the report
	Latencies     []time.Duration // per operation, retries included
}

type entry struct {
	exists bool
	user   shard.User
	doubt  bool // the last write failed: alt is what it would have left
	alt    entry0
}

type entry0 struct {
	exists bool
	user   shard.User
}

// Preload records users that exist before the workload starts.
func (l *Workload) Preload(users []shard.User) {
	if l.ledger == nil {
		l.ledger = map[int64]entry{}
	}
	for _, u := range users {
		l.ledger[u.ID] = entry{exists: true, user: u}
		l.live = append(l.live, u.ID)
	}
}

// Run writes until ctx ends.
func (l *Workload) Run(ctx context.Context) {
	if l.ledger == nil {
		l.ledger = map[int64]entry{}
	}
	if l.Rand == nil {
		l.Rand = rand.New(rand.NewPCG(1, uint64(l.NextID)))
	}
	for ctx.Err() == nil {
		l.step(ctx)
	}
}

func (l *Workload) step(ctx context.Context) {
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmpOr(l.OpTimeout, 10*time.Second))
	defer cancel()
	var id int64
	var after entry0
	var err error
	t0 := time.Now()
	switch p := l.Rand.IntN(100); {
	case p < 60 || len(l.live) == 0:
		id = l.NextID
		l.NextID++
		after = entry0{true, shard.User{ID: id, Name: fmt.Sprint("new-", id), Score: l.Rand.Int64N(1000)}}
		err = l.W.Put(opCtx, after.user)
	case p < 85:
		id = l.live[l.Rand.IntN(len(l.live))]
		after = entry0{true, shard.User{ID: id, Name: fmt.Sprint("upd-", id), Score: l.Rand.Int64N(1000)}}
		err = l.W.Put(opCtx, after.user)
	default:
		i := l.Rand.IntN(len(l.live))
		id = l.live[i]
		after = entry0{exists: false}
		err = l.W.Delete(opCtx, id)
	}
	l.Latencies = append(l.Latencies, time.Since(t0))
	before := l.ledger[id]
	if err != nil {
		l.Failed++
		if len(l.FirstErrors) < 3 {
			l.FirstErrors = append(l.FirstErrors, err)
		}
		l.ledger[id] = entry{exists: before.exists, user: before.user, doubt: true, alt: after}
		l.live = slices.DeleteFunc(l.live, func(x int64) bool { return x == id })
		return
	}
	l.Acked++
	l.ledger[id] = entry{exists: after.exists, user: after.user}
	if !before.exists && after.exists {
		l.live = append(l.live, id)
	}
	if before.exists && !after.exists {
		l.live = slices.DeleteFunc(l.live, func(x int64) bool { return x == id })
	}
}

// Verify compares the ledger with what the shards hold: lost counts ids whose
// acknowledged last write is not what the shards show (a row missing or
// stale, a deleted row back), unexpected counts rows the ledger never wrote.
// A write in doubt counts as neither if the shards show either outcome.
func (l *Workload) Verify(found Layout) (lost, unexpected int64, examples []string) {
	note := func(s string) {
		if len(examples) < 5 {
			examples = append(examples, s)
		}
	}
	for id, e := range l.ledger {
		u, ok := found.Users[id]
		match := func(exists bool, want shard.User) bool { return exists == ok && (!ok || u == want) }
		if match(e.exists, e.user) || (e.doubt && match(e.alt.exists, e.alt.user)) {
			continue
		}
		lost++
		note(fmt.Sprintf("id %d: want exists=%v %+v, found exists=%v %+v", id, e.exists, e.user, ok, u))
	}
	for id := range found.Users {
		if _, ok := l.ledger[id]; !ok {
			unexpected++
			note(fmt.Sprintf("id %d: on a shard, never written", id))
		}
	}
	return lost, unexpected, examples
}
