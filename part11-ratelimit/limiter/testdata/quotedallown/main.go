// Command quotedallown has the locking the article quotes for
// rate.Limiter.AllowN: AllowN takes the limiter's mutex and calls reserveN,
// which, as in golang.org/x/time/rate, takes the same mutex. sync.Mutex is
// not reentrant.
package main

import (
	"fmt"
	"sync"
)

type limiter struct {
	mu     sync.Mutex
	tokens int
}

func (l *limiter) reserveN(n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens < n {
		return false
	}
	l.tokens -= n
	return true
}

// AllowN locks, as the article quotes it, before calling reserveN.
func (l *limiter) AllowN(n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserveN(n)
}

func main() {
	l := &limiter{tokens: 10}
	fmt.Println("first check:", l.AllowN(1))
}
