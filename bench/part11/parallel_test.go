package part11bench

import "runtime"

// parallelismUnit is what RunParallel multiplies SetParallelism by.
func parallelismUnit() int { return runtime.GOMAXPROCS(0) }
