package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/sysdesign-masterclass/golang/part09-hashing/measure"
	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

// rebalanceDemo checks the article's Cassandra case: a 7th node joining 6,
// at 1 token per node (manual tokens), 16 (Cassandra's default since 4.0) and
// 256 (the default before 4.0).
func rebalanceDemo(_ context.Context, w io.Writer, c config) error {
	section(w, "A 7th node joins 6 (xxhash tokens, %d keys, RF=1; avg over %d node-name sets)", len(c.keys), c.sets)
	var rows [][]string
	for _, st := range measure.JoinTable(c.keys, 6, []int{1, 16, 256}, c.sets, ring.XXHash) {
		j := st.Canonical
		rows = append(rows, []string{strconv.Itoa(st.V),
			pct(j.Moved), strconv.Itoa(j.Donors), pct(j.LargestDonor), fmt.Sprintf("%.1f×", j.Speedup()),
			pct(st.Moved), pct(st.MinMoved) + "–" + pct(st.MaxMoved), fmt.Sprintf("%.1f", st.Donors), fmt.Sprintf("%.1f×", st.Speedup)})
	}
	if err := table(w, []string{"V", "moved", "donors", "largest donor", "speed-up",
		"avg moved", "range", "avg donors", "avg speed-up"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(w, "moved: share of all keys the new node takes (ideal 1/7 = 14.3%); donors: nodes that stream to it;")
	fmt.Fprintln(w, "speed-up: moved / largest donor's part, the gain over streaming it all from one node at the same rate.")
	fmt.Fprintln(w, "article: 1 token → 1/7 of the data from one node; 256 vnodes → 6 sources, \"6× faster\".")
	return nil
}
