package patterns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// articleProduct and articleRepo model the article's cache-aside repository:
// a float64 price, a database field typed as a reader only (an update reaches
// it through a type assertion), a TTL field with no default, and errors from
// json.Marshal, SET and DEL dropped.
type articleProduct struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

type articleReader interface {
	QueryProduct(id string) (*articleProduct, error)
}

type articleRepo struct {
	rdb *redis.Client
	db  articleReader
	ttl time.Duration
}

func (r *articleRepo) get(ctx context.Context, id string) (*articleProduct, error) {
	key := "product:" + id
	if cached, err := r.rdb.Get(ctx, key).Result(); err == nil {
		var p articleProduct
		if json.Unmarshal([]byte(cached), &p) == nil {
			return &p, nil
		}
	}
	p, err := r.db.QueryProduct(id)
	if err != nil {
		return nil, fmt.Errorf("database error: %w", err)
	}
	data, _ := json.Marshal(p)
	r.rdb.Set(ctx, key, data, r.ttl)
	return p, nil
}

func (r *articleRepo) update(ctx context.Context, p *articleProduct) error {
	if err := r.db.(interface{ UpdateProduct(*articleProduct) error }).UpdateProduct(p); err != nil {
		return fmt.Errorf("db write failed: %w", err)
	}
	r.rdb.Del(ctx, "product:"+p.ID)
	return nil
}

// articleDB is a database with both methods; readOnlyDB has only the reader.
type articleDB struct {
	rows    map[string]articleProduct
	queries int
}

func (d *articleDB) QueryProduct(id string) (*articleProduct, error) {
	d.queries++
	p, ok := d.rows[id]
	if !ok {
		return nil, errors.New("not found")
	}
	return &p, nil
}

func (d *articleDB) UpdateProduct(p *articleProduct) error { d.rows[p.ID] = *p; return nil }

type readOnlyDB struct{ db *articleDB }

func (d readOnlyDB) QueryProduct(id string) (*articleProduct, error) { return d.db.QueryProduct(id) }

func newArticleRepo(t *testing.T, db articleReader, hooks ...redis.Hook) (*articleRepo, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	for _, h := range hooks {
		rdb.AddHook(h)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return &articleRepo{rdb: rdb, db: db}, mr
}

// The database field is declared as a reader; UpdateProduct reaches the
// writer through an unchecked type assertion, so a repository built over a
// read-only database panics on the first update. Here Store has Put.
func TestArticleCacheAsideUpdatePanicsOnAReader(t *testing.T) {
	r, _ := newArticleRepo(t, readOnlyDB{&articleDB{rows: map[string]articleProduct{}}})
	defer func() {
		err, ok := recover().(error)
		require.True(t, ok, "no panic")
		assert.ErrorContains(t, err, "missing method UpdateProduct")
	}()
	_ = r.update(t.Context(), &articleProduct{ID: "1", Name: "mug"})
}

// UpdateProduct drops DEL's error. With the DEL failing, the update returns
// nil, the old value stays cached, and with the struct's zero ttl (SET with
// no expiry) it stays forever. CacheAside.Put returns the error
// (TestSuite/<pattern>/with_Redis_down,_writes_and_reads_still_reach_the_database).
func TestArticleCacheAsideFailedDelKeepsTheOldValueForever(t *testing.T) {
	fault := &redisFault{}
	db := &articleDB{rows: map[string]articleProduct{"1": {ID: "1", Name: "v1"}}}
	r, mr := newArticleRepo(t, db, fault)
	ctx := t.Context()
	got, err := r.get(ctx, "1")
	require.NoError(t, err)
	require.Equal(t, "v1", got.Name)
	fault.failing("del")
	assert.NoError(t, r.update(ctx, &articleProduct{ID: "1", Name: "v2"}), "the failed DEL is not reported")
	assert.Equal(t, "v2", db.rows["1"].Name)
	got, err = r.get(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, "v1", got.Name, "the cache keeps the old value")
	assert.True(t, mr.Exists("product:1"))
	assert.Zero(t, mr.TTL("product:1"), "no expiry: ttl 0 is a SET without one")
}

// json.Marshal's error is dropped: a NaN price cannot be marshalled, the SET
// stores an empty value, which never unmarshals, so every read goes to the
// database. (A float64 price cannot hold 0.10 exactly either; Product has
// PriceCents.)
func TestArticleCacheAsideUnmarshallableValueIsNeverCached(t *testing.T) {
	db := &articleDB{rows: map[string]articleProduct{"1": {ID: "1", Name: "mug", Price: math.NaN()}}}
	r, mr := newArticleRepo(t, db)
	for range 3 {
		_, err := r.get(t.Context(), "1")
		require.NoError(t, err)
	}
	assert.Equal(t, 3, db.queries)
	v, err := mr.Get("product:1")
	require.NoError(t, err)
	assert.Empty(t, v, "what the failed Marshal left in the cache")
}

// No negative caching: every lookup of an absent ID is a database query. The
// patterns cache "not found" for NegativeTTL
// (TestSuite/<pattern>/an_absent_ID_reaches_the_database_once_per_NegativeTTL).
func TestArticleCacheAsideAbsentIDAlwaysReachesTheDatabase(t *testing.T) {
	db := &articleDB{rows: map[string]articleProduct{}}
	r, _ := newArticleRepo(t, db)
	for range 100 {
		_, err := r.get(t.Context(), "404")
		require.EqualError(t, err, "database error: not found")
	}
	assert.Equal(t, 100, db.queries)
}
