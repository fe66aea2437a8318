package leakcheck

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFindWaitsForSlowTeardown(t *testing.T) {
	done := make(chan struct{})
	go func() { time.Sleep(time.Second); close(done) }() // ends after goleak alone (about 0.4 s) would have reported it
	require.NoError(t, Find(Settle))
	<-done
}

func TestFindReportsAGoroutineThatNeverEnds(t *testing.T) {
	stop := make(chan struct{})
	go func() { <-stop }()
	err := Find(200 * time.Millisecond)
	close(stop)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TestFindReportsAGoroutineThatNeverEnds")
}
