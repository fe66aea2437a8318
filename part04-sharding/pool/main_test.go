package pool

import (
	"testing"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

// The sweeps and leak exercises start goroutines and pools: none may outlive
// the tests (a leaked connection is held by the pool, not by a goroutine).
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
