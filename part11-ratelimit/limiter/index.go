package limiter

// index maps a key's 64-bit hash to its slot in a shard: open addressing
// with linear probing over a power-of-two array kept at most half full, so
// a lookup is one multiply-free index computation and, almost always, one
// or two adjacent 16-byte entries in the same cache line. It replaces a Go
// map (a map[uint64]uint32 lookup took about 15 ns of an 85 ns check in the
// profile in the README; this one, 3–4 ns). Deletion shifts the entries
// after the deleted one back (no tombstones), so probes never grow longer
// than the live entries make them. The caller holds the shard's lock.
type index struct {
	e []entry
	n int // live entries
}

type entry struct {
	h uint64
	i uint32 // slot + 1; 0 marks an empty entry
}

const minIndex = 8

func newIndex() index { return index{e: make([]entry, minIndex)} }

// home is h's first probe position. The low bits of h chose the shard, so
// the index takes its position from the high half.
func (x *index) home(h uint64) int { return int(h>>32) & (len(x.e) - 1) }

// get returns the slot of hash h.
func (x *index) get(h uint64) (uint32, bool) {
	m := len(x.e) - 1
	for p := int(h>>32) & m; ; p = (p + 1) & m {
		switch e := x.e[p]; {
		case e.i == 0:
			return 0, false
		case e.h == h:
			return e.i - 1, true
		}
	}
}

// put adds h → slot i; h must not be in x.
func (x *index) put(h uint64, i uint32) {
	if 2*(x.n+1) > len(x.e) {
		x.resize(2 * len(x.e))
	}
	x.place(h, i+1)
	x.n++
}

func (x *index) place(h uint64, v uint32) {
	m := len(x.e) - 1
	p := int(h>>32) & m
	for x.e[p].i != 0 {
		p = (p + 1) & m
	}
	x.e[p] = entry{h: h, i: v}
}

func (x *index) resize(n int) {
	old := x.e
	x.e = make([]entry, n)
	for _, e := range old {
		if e.i != 0 {
			x.place(e.h, e.i)
		}
	}
}

// del removes h if it maps to slot i and reports whether it did. Entries
// after it in its probe run move back into the gap when their home allows.
// It never resizes, so a walk over x.e may delete as it goes: an entry
// moved back past the walk's position is skipped, and near the end of a
// walk that began mid-array, an entry it saw first may be shifted back
// into a position it has still to visit (the run wraps past the walk's
// start) and be seen twice.
func (x *index) del(h uint64, i uint32) bool {
	m := len(x.e) - 1
	p := int(h>>32) & m
	for x.e[p].h != h || x.e[p].i != i+1 {
		if x.e[p].i == 0 {
			return false
		}
		p = (p + 1) & m
	}
	for q := p; ; {
		q = (q + 1) & m
		e := x.e[q]
		if e.i == 0 {
			break
		}
		// e may fill the gap at p unless its home lies cyclically in (p, q].
		if home := x.home(e.h); (q > p && (home <= p || home > q)) || (q < p && home <= p && home > q) {
			x.e[p] = e
			p = q
		}
	}
	x.e[p] = entry{}
	x.n--
	return true
}

// shrink halves the array while it is under 1/8 full, so a shard emptied
// by eviction is not walked at its old size. Not during a walk over x.e.
func (x *index) shrink() {
	n := len(x.e)
	for n > minIndex && 8*x.n < n {
		n /= 2
	}
	if n < len(x.e) {
		x.resize(n)
	}
}
