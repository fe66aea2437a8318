package patterns

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// cmdHook runs before each single command.
type cmdHook func(cmd redis.Cmder)

func (cmdHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h cmdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h(cmd); return next(ctx, cmd) }
}
func (cmdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestWriteBehindConcurrentPutsOfOneKeyLeaveTheNewestCached: two Puts of one key whose
// cache writes reach Redis in the opposite order of the buffer updates must not leave
// the older value cached while the database gets the newer one.
func TestWriteBehindConcurrentPutsOfOneKeyLeaveTheNewestCached(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	inSet, release := make(chan struct{}), make(chan struct{})
	e.rdb.AddHook(cmdHook(func(cmd redis.Cmder) {
		if cmd.Name() == "set" && strings.Contains(cmd.String(), "first") {
			close(inSet)
			<-release // the first Put's SET is slow on the wire
		}
	}))
	w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: time.Hour})
	t.Cleanup(func() { _ = w.Close(ctx) })

	first := make(chan error, 1)
	go func() { first <- w.Put(ctx, Product{ID: "views", Name: "first"}) }()
	<-inSet
	second := make(chan error, 1)
	go func() { second <- w.Put(ctx, Product{ID: "views", Name: "second"}) }()
	select { // the second Put either finishes now or waits for the first: both are fine
	case err := <-second:
		second <- err
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db, _ := e.mem.Get(ctx, "views")
	c, _ := e.cached(t, "views")
	if db.Name != "second" || c.Name != db.Name {
		t.Fatalf("database %q, cache %q: the cache must hold the last write", db.Name, c.Name)
	}
}

// blockingStore lets a test hold a database read after it has read the row.
type blockingStore struct {
	Store
	once          sync.Once
	read, release chan struct{}
}

func (s *blockingStore) Get(ctx context.Context, id string) (Product, error) {
	p, err := s.Store.Get(ctx, id)
	s.once.Do(func() { close(s.read); <-s.release })
	return p, err
}

// TestWriteBehindReadFillDoesNotHideABufferedWrite: a read that loaded the row before
// a Put must not replace the Put's cache entry with the old row when it fills.
func TestWriteBehindReadFillDoesNotHideABufferedWrite(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.mem.Put(ctx, Product{ID: "p", Name: "old"}); err != nil {
		t.Fatal(err)
	}
	db := &blockingStore{Store: e.mem, read: make(chan struct{}), release: make(chan struct{})}
	w := NewWriteBehind(e.cfg, db, WriteBehindOptions{FlushInterval: time.Hour})
	t.Cleanup(func() { _ = w.Close(ctx) })

	got := make(chan error, 1)
	go func() { _, err := w.Get(ctx, "p"); got <- err }()
	<-db.read // the reader has the old row
	if err := w.Put(ctx, Product{ID: "p", Name: "new"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	close(db.release)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if c, _ := e.cached(t, "p"); c.Name != "new" {
		t.Fatalf("cache holds %+v after the write was flushed; want the new row", c)
	}
	if p, err := w.Get(ctx, "p"); err != nil || p.Name != "new" {
		t.Fatalf("Get = %+v, %v; want the new row", p, err)
	}
}

// TestWriteBehindCloseHonoursItsContext: with the database down, Close must give up
// when its ctx ends and report the loss, not sleep a whole FlushInterval first.
func TestWriteBehindCloseHonoursItsContext(t *testing.T) {
	e := newEnv(t)
	w := NewWriteBehind(e.cfg, e.db, WriteBehindOptions{FlushInterval: time.Hour})
	if err := w.Put(context.Background(), Product{ID: "p"}); err != nil {
		t.Fatal(err)
	}
	e.mem.SetFailing(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Close(ctx) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "1 writes lost") {
			t.Fatalf("Close = %v, want the loss of 1 write reported", err)
		}
	case <-time.After(5 * time.Second):
		e.mem.SetFailing(false)
		t.Fatal("Close ignored its ctx deadline while the database was down")
	}
}
