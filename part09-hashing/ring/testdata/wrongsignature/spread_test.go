// Package wrongsignature has the shape of the article's load-distribution
// benchmark: a function named Benchmark… that takes a *testing.T, beside an
// ordinary test. It lives in testdata so the module never builds it;
// TestArticleBenchmarkWithTestingTStopsThePackage runs go test and go vet on a
// copy.
package wrongsignature

import "testing"

// BenchmarkSpread logs through t, as a test would.
func BenchmarkSpread(t *testing.T) {
	t.Log("spread measured")
}

// TestOrdinary would pass, if anything ran.
func TestOrdinary(t *testing.T) {
	if 1+1 != 2 {
		t.Fatal("arithmetic")
	}
}
