package main

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/redislimit"
)

// replyDropper is a TCP proxy to a Redis that, once armed, passes the next
// command on and then closes the client's connection instead of returning
// the reply: a Redis that ran the command and was cut off before answering.
type replyDropper struct {
	ln    net.Listener
	armed atomic.Bool
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func dropReplies(t *testing.T, upstream string) *replyDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &replyDropper{ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = copyAndClose(u, c, nil) })
			p.wg.Go(func() { _, _ = copyAndClose(c, u, &p.armed) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// copyAndClose copies replies from src to dst; when drop is armed it swallows
// the next one and closes both ends.
func copyAndClose(dst, src net.Conn, drop *atomic.Bool) (int, error) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return 0, err
		}
		if drop != nil && drop.CompareAndSwap(true, false) {
			return 0, nil
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return 0, err
		}
	}
}

// A check whose reply is lost must not be sent again: the script has run
// once and counted the request; running it a second time would count it
// twice and spend two units of the client's quota. This holds with serve's
// client (no retries) and with go-redis's defaults (3 retries), which used
// to resend it: the limiter marks its commands NoRetry.
func TestARedisCheckIsNeverSentTwice(t *testing.T) {
	for name, opts := range map[string]*redis.Options{"serve's options": redisOptions(), "go-redis defaults": {}} {
		t.Run(name, func(t *testing.T) {
			mr := miniredis.RunT(t)
			p := dropReplies(t, mr.Addr())
			opts.Addr = p.ln.Addr().String()
			rdb := redis.NewClient(opts)
			defer rdb.Close()
			l, err := redislimit.New(rdb, redislimit.FixedWindow, quota.Policy{Limit: 10, Window: time.Minute}, "rl:once:")
			require.NoError(t, err)
			require.NoError(t, l.Load(t.Context()))

			p.armed.Store(true)
			_, err = l.Allow(t.Context(), "c")
			assert.Error(t, err, "the reply was lost: the check fails, and the route's fail-open/closed rule decides")
			assert.Equal(t, "1", mr.HGet(l.Key("c"), "c"), "the script ran once: one request, counted once")
		})
	}
}
