package shard

import (
	"testing"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

// Cluster.Top queries shards from goroutines: none may outlive the tests.
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
