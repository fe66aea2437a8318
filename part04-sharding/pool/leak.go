package pool

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// Handler is one request's database work.
type Handler func(ctx context.Context, db *sql.DB, id int64) error

const leakQuery = `SELECT id, score FROM users WHERE id BETWEEN $1 AND $1 + 9`

// Leaky is the bug the article warns of: it reads the first row and returns
// without rows.Close(), through db.Query (no context, as the article's
// GetOrders): the connection stays checked out for good.
func Leaky(_ context.Context, db *sql.DB, id int64) error {
	rows, err := db.Query(leakQuery, id)
	if err != nil {
		return err
	}
	var a, b int64
	if rows.Next() {
		return rows.Scan(&a, &b) // returns with rows open
	}
	return rows.Err()
}

// DrainedNoClose never calls rows.Close() either, but reads until Next
// returns false, and database/sql closes the rows (and frees the connection)
// itself then: no leak.
func DrainedNoClose(_ context.Context, db *sql.DB, id int64) error {
	rows, err := db.Query(leakQuery, id)
	if err != nil {
		return err
	}
	var a, b int64
	for rows.Next() {
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Fixed is the article's fix: defer rows.Close() right after the query, and
// rows.Err() at the end; it takes the request's context too.
func Fixed(ctx context.Context, db *sql.DB, id int64) error {
	rows, err := db.QueryContext(ctx, leakQuery, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	var a, b int64
	if rows.Next() {
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Exercise is what a load on a pool looked like through db.Stats().
type Exercise struct {
	Done, Failed, Stuck int64         // requests finished, failed, still blocked once the requests settled (released by db.Close)
	Waits               []int64       // WaitCount at each quarter of the window
	InUseLoad           int           // the highest InUse of the quarter samples
	Start               sql.DBStats   // Stats when the load started (connections open)
	End                 sql.DBStats   // Stats at the end of the window
	InWindow            int64         // requests that returned within the window
	Idle                sql.DBStats   // Stats once the load stopped and finished requests settled
	Window              time.Duration // how long the clients sent requests
}

// Verdict tells a leak from a pool that is merely too small: both show
// WaitCount rising with InUse at MaxOpenConns under load, but only a leak
// keeps the connections checked out once the requests stop.
func (e Exercise) Verdict() string {
	waits := e.Waits[len(e.Waits)-1] - e.Waits[0]
	switch {
	case e.Idle.MaxOpenConnections > 0 && e.Idle.InUse >= e.Idle.MaxOpenConnections:
		return "leak: every connection still checked out with no request running"
	case waits > 0:
		return "saturated: requests waited for a connection, none held once idle (too small a pool, not a leak)"
	}
	return "healthy: WaitCount flat"
}

// Run sends requests from clients goroutines for window, as a server's
// callers would: each waits for its request up to twice timeout (the
// request's context ends at timeout), then gives up on it and sends the next;
// a request blocked for good, as in db.Query without a context, stays blocked,
// like a stuck handler. db.Stats() is sampled at each quarter of the window.
// Then the clients stop and Run waits until the requests settle: none is in
// flight, or every connection is checked out and no request has returned for
// the quiet period (twice timeout, at least a second), so none will come free
// for the requests still waiting. It reads the idle Stats then (or after a
// minute at most) and closes db, which releases the requests still waiting
// for a connection: those are the stuck ones.
func Run(ctx context.Context, db *sql.DB, h Handler, clients int, window, timeout time.Duration) Exercise {
	var e Exercise
	var done, failed, stuck, inflight atomic.Int64
	var closing atomic.Bool
	var lastReturn atomic.Int64 // unix nanoseconds
	var wg sync.WaitGroup
	// Open the connections first, so the window measures requests, not dials.
	for range min(clients, db.Stats().MaxOpenConnections) {
		wg.Go(func() { _ = db.PingContext(ctx) })
	}
	wg.Wait()
	lastReturn.Store(time.Now().UnixNano())
	stop := make(chan struct{})
	var clientsWG sync.WaitGroup
	for c := range clients {
		clientsWG.Go(func() {
			for id := int64(c * 100); ; id++ {
				select {
				case <-stop:
					return
				default:
				}
				result := make(chan struct{})
				inflight.Add(1)
				wg.Go(func() {
					defer close(result)
					rctx, cancel := context.WithTimeout(ctx, timeout)
					defer cancel()
					switch err := h(rctx, db, 1+id%500); {
					case err == nil:
						done.Add(1)
					case closing.Load():
						stuck.Add(1) // released by db.Close
					default:
						failed.Add(1)
					}
					lastReturn.Store(time.Now().UnixNano())
					inflight.Add(-1)
				})
				select {
				case <-result:
				case <-time.After(2 * timeout): // given up on; it may never return
				case <-stop:
					return
				}
			}
		})
	}
	start := time.Now()
	e.Start = db.Stats()
	e.Waits = append(e.Waits, e.Start.WaitCount)
	for q := 1; q <= 4; q++ {
		time.Sleep(time.Until(start.Add(window * time.Duration(q) / 4)))
		st := db.Stats()
		e.Waits = append(e.Waits, st.WaitCount)
		e.InUseLoad = max(e.InUseLoad, st.InUse)
		e.End = st
	}
	e.Window = time.Since(start)
	e.InWindow = done.Load() + failed.Load()
	close(stop)
	clientsWG.Wait() // no request starts after this
	e.Idle = settle(db, &inflight, &lastReturn, max(2*timeout, time.Second), time.Minute)
	closing.Store(true)
	_ = db.Close()
	wg.Wait()
	e.Done, e.Failed, e.Stuck = done.Load(), failed.Load(), stuck.Load()
	return e
}

// settle polls until no request is in flight, or until every connection is
// checked out and no request has returned for quiet (the requests in flight
// wait for a connection none will return), or until limit; it returns the
// Stats then.
func settle(db *sql.DB, inflight, lastReturn *atomic.Int64, quiet, limit time.Duration) sql.DBStats {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(limit)
	for {
		idle := inflight.Load() == 0 // before Stats: a request releases its connection before it counts as returned
		st := db.Stats()
		exhausted := st.MaxOpenConnections > 0 && st.InUse >= st.MaxOpenConnections
		if idle || exhausted && time.Since(time.Unix(0, lastReturn.Load())) >= quiet || time.Now().After(deadline) {
			return st
		}
		<-tick.C
	}
}
