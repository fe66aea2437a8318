package measure

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
)

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// WriteLoadTable prints the std-dev / mean table: per V, for each N, the
// canonical ring, the average over node-name sets and the two models, then the
// article's figure.
func WriteLoadTable(w io.Writer, stats []LoadStat, keys int) error {
	byNV := map[[2]int]LoadStat{}
	var ns, vs []int
	for _, s := range stats {
		if _, ok := byNV[[2]int{s.N, s.V}]; !ok {
			if !slices.Contains(ns, s.N) {
				ns = append(ns, s.N)
			}
			if !slices.Contains(vs, s.V) {
				vs = append(vs, s.V)
			}
		}
		byNV[[2]int{s.N, s.V}] = s
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "V\t")
	for _, n := range ns {
		fmt.Fprintf(tw, "N=%d node-i\tN=%d avg\t1/√(NV)\tarc model\t", n, n)
	}
	fmt.Fprint(tw, "article (N=5)\t\n")
	for _, v := range vs {
		fmt.Fprintf(tw, "%d\t", v)
		for _, n := range ns {
			s := byNV[[2]int{n, v}]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t", pct(s.Canonical.CV()), pct(s.CV),
				pct(ArticleModel(n, v)), pct(ArcModel(n, v, keys)))
		}
		if a, ok := Article[v]; ok {
			fmt.Fprintf(tw, "~%s\t\n", pct(a))
		} else {
			fmt.Fprint(tw, "-\t\n")
		}
	}
	return tw.Flush()
}

// WriteRemapTable prints the keys-moved table, with the minimum any scheme can
// achieve (only the joining or leaving node's share moves) as the first row.
func WriteRemapTable(w io.Writer, rows []RemapRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "scheme\tadd node-3 (3→4)\tremove node-1 (4→3)\tadd node-10 (10→11)\tmax/mean load (N=10)\t\n")
	fmt.Fprintf(tw, "minimum possible\t%s\t%s\t%s\t%.2f\t\n", pct(1.0/4), pct(1.0/4), pct(1.0/11), 1.0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t\n", r.Scheme, pct(r.Add3to4), pct(r.RemoveMiddle),
			pct(r.Add10to11), r.MaxOverMean10)
	}
	return tw.Flush()
}
