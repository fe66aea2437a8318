package leaky

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// Load is the traffic Drive sends.
type Load struct {
	Requests    int // GET /api/search requests in all
	Slow        int // how many of them ask a SlowQuery, spread evenly
	Concurrency int // requests in flight at once; zero means 8
	QueryBytes  int // length of each query: HeapLeak keeps about this much per request
}

// Tally counts Drive's answers.
type Tally struct {
	OK, TimedOut, Other int64
}

// Drive sends l's requests to baseURL with c and counts the answers. It closes
// c's idle connections when done, so that no connection of its own is still
// open when a profile is taken.
func Drive(ctx context.Context, c *http.Client, baseURL string, l Load) (Tally, error) {
	if l.Concurrency <= 0 {
		l.Concurrency = 8
	}
	defer c.CloseIdleConnections()
	var (
		next     atomic.Int64
		ok, slow atomic.Int64
		other    atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	pad := strings.Repeat("x", max(l.QueryBytes, 1))
	for range l.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= l.Requests || ctx.Err() != nil {
					return
				}
				q := fmt.Sprintf("%d:%s", i, pad)[:max(l.QueryBytes, 1)]
				if l.Slow > 0 && (i+1)*l.Slow/l.Requests != i*l.Slow/l.Requests {
					q = SlowQuery + q
				}
				code, err := get(ctx, c, baseURL+"/api/search?q="+url.QueryEscape(q))
				switch {
				case err != nil:
					errOnce.Do(func() { firstErr = err })
					return
				case code == http.StatusOK:
					ok.Add(1)
				case code == http.StatusGatewayTimeout:
					slow.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t := Tally{OK: ok.Load(), TimedOut: slow.Load(), Other: other.Load()}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return t, firstErr
}

func get(ctx context.Context, c *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}
