package part11bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/ratelimit"
)

// fakeClock is a clock that moves only when a caller sleeps on it or the
// test advances it, and counts the sleeps.
type fakeClock struct {
	now    time.Time
	sleeps int
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(d time.Duration) {
	c.sleeps++
	c.now = c.now.Add(d)
}

// The article's time-gap leaky bucket (uber-go/ratelimit) "forces the
// current thread to sleep" when a call comes early, and the table says it
// smooths output "to a constant rate". With the library's default slack of
// 10 it does not after a quiet spell: 12 calls at one instant, at 100 per
// second, after a second of idle: 11 pass at once and only the 12th
// sleeps. WithoutSlack spaces them all (11 sleeps), as limiter.Leaky does.
// (This test is in the bench module with the anchor: cd bench && go test
// ./part11/.)
func TestArticleUberDefaultSlackBursts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []ratelimit.Option
		sleeps int
	}{{"default slack", nil, 1}, {"WithoutSlack", []ratelimit.Option{ratelimit.WithoutSlack}, 11}} {
		c := &fakeClock{now: time.Unix(1_750_000_000, 0)}
		l := ratelimit.New(100, append(tc.opts, ratelimit.WithClock(c))...)
		l.Take()
		c.now = c.now.Add(time.Second) // idle
		c.sleeps = 0
		for range 12 {
			l.Take()
		}
		assert.Equal(t, tc.sleeps, c.sleeps, "%s: calls of 12 that slept", tc.name)
	}
}
