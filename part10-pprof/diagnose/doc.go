// Package diagnose does the article's five-step heap diff without a person at
// the keyboard, and the same for goroutines: it captures a baseline profile
// over HTTP, waits while load runs, captures a peak profile, subtracts the
// first from the second (what `go tool pprof -base baseline peak` shows) and
// names the function that grew, with its growth.
//
// The article's `top` lists functions by their own (flat) growth, and the flat
// function of a leak is often the standard library's: its case study names
// strings.(*Builder).WriteString, which every Builder in the program calls.
// Each Finding therefore carries two names: Leaf, the innermost frame (what
// `top` shows), and Func, the first frame outside the Go distribution, which
// is the code to fix. Findings are grouped by Func.
//
// Heap profiles are captured with ?gc=1, so both are taken right after a
// collection and hold live objects only; goroutine profiles are captured after
// the load has finished, so goroutines still in flight are not mistaken for
// leaked ones. Parse gives a clear error for a truncated file or one that is
// not the kind of profile asked for.
package diagnose
