package lfu

// LFUInitVal is Redis's LFU_INIT_VAL: the counter a new key starts with, so it is
// not the first thing evicted before it had a chance to be read.
const LFUInitVal = 5

// IncrProbability is the chance that one access increments a key's LFU counter, as
// Redis's LFULogIncr computes it: P = 1 / ((counter − LFU_INIT_VAL)·lfu_log_factor + 1),
// with a negative base clamped to 0 (P = 1 below LFU_INIT_VAL) and P = 0 at the
// counter's ceiling of 255. The counter is a Morris counter: a logarithm of the
// access count in 8 bits.
func IncrProbability(counter, logFactor int) float64 {
	if counter >= 255 {
		return 0
	}
	base := max(counter-LFUInitVal, 0)
	return 1 / float64(base*logFactor+1)
}

// ExpectedAccesses is how many accesses it takes on average to move a new key's
// counter from LFU_INIT_VAL to counter: the sum of 1/P over the steps.
func ExpectedAccesses(counter, logFactor int) float64 {
	total := 0.0
	for c := LFUInitVal; c < min(counter, 255); c++ {
		total += 1 / IncrProbability(c, logFactor)
	}
	return total
}

// CounterRange is the distribution of a key's counter after some number of accesses.
type CounterRange struct {
	Mean   float64
	Lo, Hi int // central 99.99% interval: P(counter < Lo) ≤ 0.005%, P(counter > Hi) ≤ 0.005% (wide enough that a dozen sampled keys stay inside on all but ~1 run in 1,000)
}

// Predict returns the exact counter distribution after each access count in
// accesses, starting from LFU_INIT_VAL, by running the Markov chain of LFULogIncr
// (no decay: the demo finishes well within lfu-decay-time minutes).
func Predict(accesses []int, logFactor int) map[int]CounterRange {
	maxN := 0
	want := make(map[int]bool, len(accesses))
	for _, n := range accesses {
		want[n] = true
		maxN = max(maxN, n)
	}
	out := make(map[int]CounterRange, len(want))
	var p [256]float64
	p[LFUInitVal] = 1
	lo, hi := LFUInitVal, LFUInitVal // support of the distribution, to keep the loop short
	var step [256]float64
	for c := range step {
		step[c] = IncrProbability(c, logFactor)
	}
	for n := 0; ; n++ {
		if want[n] {
			out[n] = summarize(&p, lo, hi)
		}
		if n == maxN {
			return out
		}
		for c := min(hi, 254); c >= lo; c-- { // downward, so p[c+1] already holds its new value; 255 never moves
			moved := p[c] * step[c]
			p[c] -= moved
			p[c+1] += moved
		}
		if hi < 255 && p[hi+1] > 0 {
			hi++
		}
		for lo < hi && p[lo] < 1e-300 {
			lo++
		}
	}
}

func summarize(p *[256]float64, lo, hi int) CounterRange {
	r := CounterRange{Lo: -1, Hi: -1}
	cum := 0.0
	for c := lo; c <= hi; c++ {
		r.Mean += float64(c) * p[c]
		cum += p[c]
		if r.Lo < 0 && cum > 0.00005 {
			r.Lo = c
		}
		if r.Hi < 0 && cum >= 0.99995 {
			r.Hi = c
		}
	}
	if r.Hi < 0 { // rounding left cum a hair under 0.99995
		r.Hi = hi
	}
	return r
}
