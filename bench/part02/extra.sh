#!/bin/sh
# make bench-part02 runs this after the Go benchmarks: part 2's L7 balancer
# beside HAProxy under wrk (bench/cmd/vshaproxy), COUNT rounds. Without
# haproxy or wrk it says how to get them and prints no result.
cd "$(dirname "$0")/.." && exec go run ./cmd/vshaproxy -count "${1:-5}"
