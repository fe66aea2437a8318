package stampede

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/singleflight"
)

// articleProducts models the article's ProductCacheService.GetOrFetch: a plain
// map as the cache, x/sync singleflight's DoChan for the fetch, and a select
// over ctx, time.After(timeout) and the flight's result. Its fetch takes no
// context.
type articleProducts struct {
	flights singleflight.Group
	cache   map[string]string
}

var errArticleTimeout = errors.New("database fetch timeout exceeded")

func (c *articleProducts) getOrFetch(ctx context.Context, id string, timeout time.Duration, fetch func() (string, error)) (string, error) {
	key := "product:" + id
	if v, ok := c.cache[key]; ok {
		return v, nil
	}
	ch := c.flights.DoChan(key, func() (any, error) { return fetch() })
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(timeout):
		return "", errArticleTimeout
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		v := r.Val.(string)
		c.cache[key] = v
		return v, nil
	}
}

// A timeout of 0 makes time.After's channel ready at once, while the flight's
// result comes from another goroutine: the select takes the timeout whenever
// the result is not there yet, and half the time when it is (a select picks
// among ready cases at random), so at least half the calls fail in
// expectation, and in practice nearly all (the test logs the count; 981–1000
// of 1,000 in six runs, with and without -race). Group.Do reads timeout ≤ 0 as
// no timeout of its own: 1,000 of 1,000 succeed.
func TestArticleGetOrFetchTimeoutZero(t *testing.T) {
	const calls = 1000
	c := &articleProducts{cache: map[string]string{}}
	timeouts := 0
	for i := range calls {
		_, err := c.getOrFetch(t.Context(), strconv.Itoa(i), 0, func() (string, error) { return "v", nil })
		if errors.Is(err, errArticleTimeout) {
			timeouts++
		} else {
			assert.NoError(t, err)
		}
	}
	t.Logf("timeout 0: %d of %d calls timed out, every fetch succeeded at once", timeouts, calls)
	assert.Greater(t, timeouts, calls*2/5, "at least half in expectation")

	var g Group[string]
	ctx, cancel := context.WithCancel(t.Context()) // a ctx that can end: Do takes the DoChan path
	defer cancel()
	ok := 0
	for i := range calls {
		v, err := g.Do(ctx, strconv.Itoa(i), 0, func(context.Context) (string, error) { return "v", nil })
		if assert.NoError(t, err) && v == "v" {
			ok++
		}
	}
	assert.Equal(t, calls, ok)
}

// The article's fetch takes no context, so a hung database call keeps its
// flight open: every later caller of the key joins it and times out too.
// Three callers 200 ms apart with a 100 ms timeout each all time out, and one
// fetch was ever started (fake clock). Group gives the fetch a context that
// ends with the leader's timeout, so the next caller starts a fresh fetch.
func TestArticleGetOrFetchHungFetchHoldsTheFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &articleProducts{cache: map[string]string{}}
		hang := make(chan struct{})
		var started atomic.Int64
		fetch := func() (string, error) { started.Add(1); <-hang; return "v", nil }
		for i := range 3 {
			_, err := c.getOrFetch(context.Background(), "42", 100*time.Millisecond, fetch)
			assert.ErrorIs(t, err, errArticleTimeout, "call %d", i)
			time.Sleep(100 * time.Millisecond) // the next call 200 ms after this one's start
		}
		assert.Equal(t, int64(1), started.Load(), "one fetch, still hanging, served every call")
		close(hang)
		synctest.Wait()

		var g Group[string]
		var ours atomic.Int64
		for i := range 3 {
			_, err := g.Do(context.Background(), "42", 100*time.Millisecond, func(ctx context.Context) (string, error) {
				ours.Add(1)
				<-ctx.Done() // a database call that honours its context
				return "", ctx.Err()
			})
			assert.ErrorIs(t, err, ErrTimeout, "call %d", i)
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		assert.Equal(t, int64(3), ours.Load(), "each call after the timeout starts its own fetch")
	})
}

// The article's service is a struct with a map field and no constructor: its
// zero value panics on the first miss.
func TestArticleGetOrFetchZeroValuePanics(t *testing.T) {
	var c articleProducts
	assert.PanicsWithError(t, "assignment to entry in nil map", func() {
		_, _ = c.getOrFetch(t.Context(), "1", time.Hour, func() (string, error) { return "v", nil })
	})
}

// articleChildEnv names the article model a child process of this test binary
// runs (TestArticleConcurrentUseInAChild): what it shows ends the process.
const articleChildEnv = "PART03_ARTICLE_CHILD"

// runArticleChild runs this test binary again with only the calling test and
// articleChildEnv=model, and returns what it printed and how it ended.
func runArticleChild(t *testing.T, model string) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), articleChildEnv+"="+model)
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "the child did not end within 2 minutes")
	if len(out) > 2000 { // the goroutine dump that follows is not needed
		out = out[:2000]
	}
	return string(out), err
}

// The article's cache map is read and written by every caller: 64 goroutines
// calling GetOrFetch on distinct keys end the process (the runtime's
// "concurrent map writes" check, or the race detector first under -race). It
// runs in a child process because a fatal error cannot be recovered.
func TestArticleGetOrFetchMapIsNotSafeForConcurrentUse(t *testing.T) {
	if os.Getenv(articleChildEnv) == "getOrFetch" {
		c := &articleProducts{cache: map[string]string{}}
		var wg sync.WaitGroup
		for g := range 64 {
			wg.Go(func() {
				for i := range 20_000 {
					_, _ = c.getOrFetch(context.Background(), strconv.Itoa(g*20_000+i), time.Hour,
						func() (string, error) { return "v", nil })
				}
			})
		}
		wg.Wait()
		return // the claim failed: the parent sees a clean exit
	}
	out, err := runArticleChild(t, "getOrFetch")
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "64 goroutines went through the map and the child exited cleanly:\n%s", out)
	t.Logf("child: %s", firstLine(out))
	assert.Regexp(t, `fatal error: concurrent map (writes|read and map write)|WARNING: DATA RACE`, out)
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "fatal error") || strings.Contains(l, "WARNING") {
			return l
		}
	}
	return s
}

// articleEntry models the article's XFetchEntry and GetOrRefresh: the caller
// shares one entry, "" means "no data yet", a failed fetch returns whatever
// value the entry holds, and a refresh writes the entry's fields without a
// lock.
type articleEntry struct {
	value  string
	expiry time.Time
	delta  time.Duration
}

func (e *articleEntry) getOrRefresh(now func() time.Time, r func() float64, fetch func() (string, time.Duration, error)) (string, error) {
	if e.value != "" && !articleShouldRefresh(now(), e.delta, e.expiry, r()) {
		return e.value, nil
	}
	start := now()
	v, ttl, err := fetch()
	if err != nil {
		if e.value != "" {
			return e.value, nil // stale, however old
		}
		return "", err
	}
	e.value, e.expiry, e.delta = v, now().Add(ttl), now().Sub(start)
	return v, nil
}

// An empty value reads as "no data yet": a key whose value is "" is refetched
// on every request, an hour before it expires. The Loader caches it
// (TestLoaderCachesAnEmptyValue).
func TestArticleXFetchEmptyValueIsRefetchedEveryTime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := &articleEntry{expiry: now.Add(time.Hour), delta: time.Millisecond}
	fetches := 0
	for range 10_000 {
		v, err := e.getOrRefresh(func() time.Time { return now }, rand.Float64,
			func() (string, time.Duration, error) { fetches++; return "", time.Hour, nil })
		require.NoError(t, err)
		require.Empty(t, v)
	}
	assert.Equal(t, 10_000, fetches)
}

// "Serve stale on error" has no bound: an entry that expired a day ago is
// returned as if fresh when the fetch fails. Loader.StaleFor bounds it
// (TestLoaderServesStaleOnlyWithinGrace).
func TestArticleXFetchServesStaleWithoutBound(t *testing.T) {
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	e := &articleEntry{value: "yesterday's price", expiry: now.Add(-24 * time.Hour), delta: time.Millisecond}
	v, err := e.getOrRefresh(func() time.Time { return now }, rand.Float64,
		func() (string, time.Duration, error) { return "", 0, errors.New("database down") })
	assert.NoError(t, err)
	assert.Equal(t, "yesterday's price", v)
}

// The entry is shared and GetOrRefresh writes its fields without a lock: eight
// goroutines refreshing one expired entry are a data race. Only the race
// detector sees it, so this runs under -race only (make test always uses it),
// in a child process, since a race report fails the test that has it.
func TestArticleXFetchEntryRace(t *testing.T) {
	if os.Getenv(articleChildEnv) == "getOrRefresh" {
		e := &articleEntry{value: "v", expiry: time.Now().Add(-time.Second)}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					_, _ = e.getOrRefresh(time.Now, rand.Float64, func() (string, time.Duration, error) { return "v", -time.Second, nil })
				}
			})
		}
		wg.Wait()
		return
	}
	if !raceEnabled {
		t.Skip("only the race detector reports this race: go test -race")
	}
	out, err := runArticleChild(t, "getOrRefresh")
	t.Logf("child: %s", firstLine(out))
	assert.Error(t, err, "the child exited cleanly")
	assert.Contains(t, out, "WARNING: DATA RACE")
}
