package patterns

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part03-caching/internal/fixture"
)

// The pattern suite: one set of cases run against miniredis + MemStore (unit tests,
// each case in a synctest bubble, so timers and TTLs run on a fake clock) and against
// real Redis + real PostgreSQL (integration tests). Cases use IDs under env.prefix, so
// a shared database needs no cleanup between them.

// backend makes an env for one case.
type backend struct {
	name   string
	bubble bool // run each case in a synctest bubble (in-process services only)
	newEnv func(t *testing.T) *env
}

// env is one case's cache and database.
type env struct {
	backend string
	bubble  bool
	prefix  string // of Redis keys (cfg.Prefix) and of product IDs
	cfg     Config
	rdb     *redis.Client
	store   Store          // the database itself: what is committed
	fault   *faultStore    // between the patterns and store: injects outages and holds
	db      *CountingStore // what the patterns get: counts the calls that reach the database
	redis   *redisFault    // injects failures of chosen Redis commands
	// expire makes Redis drop a key as its TTL would (miniredis: the TTL elapses on
	// its clock; real Redis: DEL, so a test never waits a TTL out).
	expire func(key string)
	count  func(ctx context.Context, prefix string) (int, error)
}

// newEnvOver wires an env around a cache client and a database.
func newEnvOver(t *testing.T, name string, bubble bool, rdb *redis.Client, prefix string, store Store) *env {
	e := &env{backend: name, bubble: bubble, prefix: prefix, rdb: rdb, store: store, redis: &redisFault{}}
	rdb.AddHook(e.redis)
	e.fault = &faultStore{Store: store}
	e.db = &CountingStore{Store: e.fault}
	e.cfg = Config{Redis: rdb, Prefix: prefix, TTL: time.Minute, NegativeTTL: 10 * time.Second}
	e.count = store.(interface {
		Count(context.Context, string) (int, error)
	}).Count
	return e
}

func (e *env) id(s string) string   { return e.prefix + s }
func (e *env) key(id string) string { return Key(e.prefix, id) }

// cached returns what the cache holds for id.
func (e *env) cached(t *testing.T, id string) (Product, bool) {
	t.Helper()
	p, err := newCache(e.cfg).get(context.Background(), id)
	if errors.Is(err, errMiss) {
		return Product{}, false
	}
	require.NoError(t, err, "cache get %s", id)
	return p, true
}

// committed returns what the database holds for id.
func (e *env) committed(t *testing.T, id string) Product {
	t.Helper()
	p, err := e.store.Get(context.Background(), id)
	require.NoError(t, err, "database get %s", id)
	return p
}

func (e *env) rows(t *testing.T) int {
	t.Helper()
	n, err := e.count(context.Background(), e.prefix)
	require.NoError(t, err)
	return n
}

// cacheKeys lists the Redis keys of this env.
func (e *env) cacheKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	iter := e.rdb.Scan(context.Background(), 0, e.prefix+"*", 100).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	require.NoError(t, iter.Err())
	return keys
}

// deadRedis returns a Config whose Redis is unreachable.
func (e *env) deadRedis(t *testing.T) Config {
	// Every connection is dropped at once, so every command fails. (A failing dial
	// would start go-redis's background redial loop, which outlives the client by a
	// second.)
	rdb := dialClient(func() (net.Conn, error) {
		c, s := net.Pipe()
		_ = s.Close()
		return c, nil
	})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := e.cfg
	cfg.Redis = rdb
	return cfg
}

// waitFor waits for cond with a deadline (on the bubble's fake clock in unit tests).
func (e *env) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if e.bubble {
		synctest.Wait()
	}
	fixture.WaitFor(t, what, cond)
}

// open returns a pattern, closed at cleanup.
func (e *env) open(t *testing.T, k kind) Pattern {
	p := k.new(e.cfg, e.db)
	closeAtCleanup(t, p)
	return p
}

// closeAtCleanup closes a WriteBehind at cleanup, giving up after a while (the
// database may still be down in a failed test).
func closeAtCleanup(t *testing.T, p Pattern) {
	if w, ok := p.(*WriteBehind); ok {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = w.Close(ctx)
		})
	}
}

// settle makes what p acknowledged reach the database (write-behind: flush).
func settle(t *testing.T, p Pattern) {
	t.Helper()
	if w, ok := p.(*WriteBehind); ok {
		require.NoError(t, w.Flush(context.Background()))
	}
}

// heldRead starts p.Get(id) and returns once the read has loaded the row from the
// database and is held there; finish lets it go on and returns its error.
func (e *env) heldRead(t *testing.T, p Pattern, id string) (finish func() error) {
	t.Helper()
	h := newHold()
	e.fault.holdGet.Store(h)
	read := make(chan error, 1)
	go func() { _, err := p.Get(context.Background(), id); read <- err }()
	within(t, "the read to load the row", h.entered)
	e.fault.holdGet.Store(nil)
	return func() error {
		close(h.release)
		return within(t, "the held read", read)
	}
}

// reads checks that p reads want for id and that the cache holds nothing else.
func (e *env) reads(t *testing.T, p Pattern, id, want, when string) {
	t.Helper()
	got, err := p.Get(context.Background(), id)
	require.NoError(t, err, when)
	assert.Equal(t, want, got.Name, when)
	if c, ok := e.cached(t, id); ok {
		assert.Equal(t, want, c.Name, "cached, %s", when)
	}
}

// within fails t unless done delivers before a generous deadline (on the fake clock
// in unit tests): every wait of the suite has one.
func within[T any](t *testing.T, what string, done <-chan T) T {
	t.Helper()
	select {
	case v := <-done:
		return v
	case <-time.After(10 * time.Second):
		require.FailNow(t, what+" did not happen")
		panic("unreachable")
	}
}

// faultStore plays a database that is down, or slow at a chosen moment.
type faultStore struct {
	Store
	down               atomic.Bool
	holdBatch, holdGet atomic.Pointer[hold]
}

var errDown = errors.New("database is down (injected)")

// hold blocks the calls it is set on until released (or their ctx ends).
type hold struct {
	once             sync.Once
	entered, release chan struct{}
}

func newHold() *hold { return &hold{entered: make(chan struct{}), release: make(chan struct{})} }

func (h *hold) wait(ctx context.Context) error {
	h.once.Do(func() { close(h.entered) })
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Get reads the row, then holds: a reader that has the row and is slow to use it.
func (s *faultStore) Get(ctx context.Context, id string) (Product, error) {
	if s.down.Load() {
		return Product{}, errDown
	}
	p, err := s.Store.Get(ctx, id)
	if h := s.holdGet.Load(); h != nil {
		if herr := h.wait(ctx); herr != nil {
			return Product{}, herr
		}
	}
	return p, err
}

func (s *faultStore) Put(ctx context.Context, p Product) (Product, error) {
	if s.down.Load() {
		return Product{}, errDown
	}
	return s.Store.Put(ctx, p)
}

func (s *faultStore) PutBatch(ctx context.Context, ps []Product) error {
	if s.down.Load() {
		return errDown
	}
	if h := s.holdBatch.Load(); h != nil {
		if err := h.wait(ctx); err != nil {
			return err
		}
	}
	return s.Store.PutBatch(ctx, ps)
}

// redisFault is a go-redis hook that fails the commands a test chooses, before they
// are sent, or runs a function before each command.
type redisFault struct {
	fail   atomic.Pointer[[]string]
	before atomic.Pointer[func(redis.Cmder)]
}

func (f *redisFault) failing(cmds ...string) { f.fail.Store(&cmds) }
func (f *redisFault) healthy()               { f.fail.Store(nil) }

func (f *redisFault) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *redisFault) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if b := f.before.Load(); b != nil {
			(*b)(cmd)
		}
		if cmds := f.fail.Load(); cmds != nil && slices.Contains(*cmds, cmd.Name()) {
			return errors.New("redis " + cmd.Name() + " failed (injected)")
		}
		return next(ctx, cmd)
	}
}
func (f *redisFault) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// kind is one of the five patterns.
type kind struct {
	name string
	new  func(Config, Store) Pattern
}

var kinds = []kind{
	{"cache-aside", func(c Config, db Store) Pattern { return NewCacheAside(c, db) }},
	{"read-through", func(c Config, db Store) Pattern { return NewReadThrough(c, db) }},
	{"write-through", func(c Config, db Store) Pattern { return NewWriteThrough(c, db) }},
	{"write-behind", func(c Config, db Store) Pattern {
		return NewWriteBehind(c, db, WriteBehindOptions{FlushInterval: time.Hour})
	}},
	{"write-around", func(c Config, db Store) Pattern { return NewWriteAround(c, db) }},
}

// suiteCase runs for each pattern in only (all five if empty).
type suiteCase struct {
	name string
	only []string
	run  func(t *testing.T, e *env, k kind)
}

// runSuite runs every case against b.
func runSuite(t *testing.T, b backend) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for _, c := range suite {
				if len(c.only) > 0 && !slices.Contains(c.only, k.name) {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					if b.bubble {
						synctest.Test(t, func(t *testing.T) { c.run(t, b.newEnv(t), k) })
						return
					}
					t.Parallel()
					c.run(t, b.newEnv(t), k)
				})
			}
		})
	}
}

const writeBehind = "write-behind"

var suite = slices.Concat(commonCases, asideCases, readThroughCases, writeThroughCases, writeAroundCases, writeBehindCases)

// dialClient is a Redis client that connects through dial instead of the network.
// Its endpoint detection is off: it looks the host name up in DNS, which a synctest
// bubble does not allow.
func dialClient(dial func() (net.Conn, error)) *redis.Client {
	return redis.NewClient(&redis.Options{
		Dialer:                   func(context.Context, string, string) (net.Conn, error) { return dial() },
		MaxRetries:               -1, // a failure shows at once (miniredis never drops a command)
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}
