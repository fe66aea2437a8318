package lastseen

import (
	"sync"
	"testing"
)

// Four goroutines, one client, as four concurrent requests of one user.
func TestOneClientFourRequests(t *testing.T) {
	l := New()
	l.Seen("203.0.113.7")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				l.Seen("203.0.113.7")
			}
		}()
	}
	wg.Wait()
}
