package pgshard_test

import (
	"testing"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

// Pools and scatter-gather start goroutines: none may outlive the tests.
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
