// Command benchratio prints the comparison a reader runs benchmarks for: how each
// anchor library's time, memory and allocations compare with this project's own
// implementation, measured in the same run on the same CPU.
//
// Side-by-side benchmarks name their contenders with an `impl=NAME` path element,
// the project's own being `impl=ours` (BenchmarkGetNode/impl=groupcache/hash=crc32).
// benchratio groups results by package and by the name without that element, takes the median of
// the -count runs, and prints anchor ÷ ours for time (2.00× means the anchor needs
// twice the time of ours) and both sides' bytes and allocations per op. Metrics a benchmark
// reports itself follow in a second table, read the same way: above 1.00× ours is better
// (ours ÷ anchor for a rate per second such as req/s).
//
//	go run ./cmd/benchratio out/part09.txt                           # this machine
//	go run ./cmd/benchratio -baseline results/part09.txt out/part09.txt  # beside the committed run
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/perf/benchfmt"
)

func main() {
	baseline := flag.String("baseline", "", "a second result file (e.g. the committed bench/results/partNN.txt) whose ratios are printed beside")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: benchratio [-baseline FILE] FILE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	cur, err := load(flag.Args()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
	var base *results
	if *baseline != "" {
		if base, err = load(*baseline); err != nil {
			fmt.Fprintln(os.Stderr, "benchratio:", err)
			os.Exit(1)
		}
	}
	if err := report(os.Stdout, cur, base); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}

// results holds the samples of one or more files: group → impl → unit → values.
type results struct {
	cpu    string
	groups map[string]map[string]map[string][]float64
	order  []string // groups in first-seen order
}

func load(files ...string) (*results, error) {
	rs := &results{groups: map[string]map[string]map[string][]float64{}}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		err = rs.read(f, name)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if len(rs.groups) == 0 {
		return nil, errors.New("no side-by-side results (benchmarks named .../impl=NAME/...) in " + strings.Join(files, ", "))
	}
	return rs, nil
}

func (rs *results) read(r io.Reader, name string) error {
	rd := benchfmt.NewReader(r, name)
	for rd.Scan() {
		res, ok := rd.Result().(*benchfmt.Result)
		if !ok {
			continue // unit metadata; syntax errors are ordinary test output lines
		}
		if rs.cpu == "" {
			rs.cpu = res.GetConfig("cpu")
		}
		group, impl := split(res.Name)
		// Benchmarks of one name in two packages (a chapter's own and its bench/
		// harness) are different measurements: never pool them.
		if pkg := res.GetConfig("pkg"); pkg != "" {
			group = path.Base(pkg) + "." + group
		}
		if impl != "" {
			for _, v := range res.Values {
				rs.add(group, impl, v.Unit, v.Value)
			}
			continue
		}
		// A paired benchmark runs its contenders in turns within one op and
		// reports each one's time per cycle as NAME-ns/cycle.
		for _, v := range res.Values {
			if name, ok := strings.CutSuffix(v.OrigUnit, "-ns/cycle"); ok { // as written: benchfmt tidies it to -sec/cycle
				rs.add(group, name, "ns/cycle", v.OrigValue)
			}
		}
	}
	return rd.Err()
}

func (rs *results) add(group, impl, unit string, v float64) {
	g, seen := rs.groups[group]
	if !seen {
		g = map[string]map[string][]float64{}
		rs.groups[group] = g
		rs.order = append(rs.order, group)
	}
	if g[impl] == nil {
		g[impl] = map[string][]float64{}
	}
	g[impl][unit] = append(g[impl][unit], v)
}

// split removes the impl=NAME element (and the -GOMAXPROCS suffix, kept apart so
// runs at different -cpu values stay apart) from a benchmark name.
func split(n benchfmt.Name) (group, impl string) {
	base, parts := n.Parts()
	var b strings.Builder
	b.Write(base)
	for _, p := range parts {
		if v, ok := strings.CutPrefix(string(p), "/impl="); ok {
			impl = v
			continue
		}
		b.Write(p)
	}
	return strings.TrimPrefix(b.String(), "Benchmark"), impl
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratio formats one unit's ratio so that above 1.00× always means ours is
// better: anchor ÷ ours for costs (time, bytes, commands per operation), and
// ours ÷ anchor for rates (a unit per second, e.g. req/s), where more is
// better. "-" when either side lacks the unit.
func ratio(g map[string]map[string][]float64, impl, unit string) string {
	o, a := g["ours"][unit], g[impl][unit]
	if len(o) == 0 || len(a) == 0 {
		return "-"
	}
	mo, ma := median(o), median(a)
	if rate(unit) {
		mo, ma = ma, mo
	}
	if mo == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", ma/mo)
}

// rate reports whether more of the unit is better: a count per second.
func rate(unit string) bool { return strings.HasSuffix(unit, "/s") }

// cpuUnits are the CPU-time-per-operation metrics benchmarks may report
// (the process's CPU time, which waits for a core on a busy machine do not
// inflate as they inflate ns/op), as benchfmt's reader tidies them: it
// turns cpu-ns/op into cpu-sec/op, as it turns ns/op into sec/op, and
// leaves cpu-µs/req alone.
var cpuUnits = []string{"cpu-sec/op", "cpu-µs/req"}

// hasCPU reports whether any result carries a CPU unit: only then does the
// report have its CPU column.
func (rs *results) hasCPU() bool {
	for _, g := range rs.groups {
		for _, units := range g {
			for _, u := range cpuUnits {
				if len(units[u]) > 0 {
					return true
				}
			}
		}
	}
	return false
}

// cpuRatio is ratio for the first CPU unit both sides report, or "-".
func cpuRatio(g map[string]map[string][]float64, impl string) string {
	for _, u := range cpuUnits {
		if r := ratio(g, impl, u); r != "-" {
			return r
		}
	}
	return "-"
}

// pair formats both sides' medians of one unit, e.g. "0|1" allocations.
func pair(g map[string]map[string][]float64, impl, unit string) string {
	o, a := g["ours"][unit], g[impl][unit]
	if len(o) == 0 || len(a) == 0 {
		return "-"
	}
	return fmt.Sprintf("%g|%g", median(o), median(a))
}

func report(w io.Writer, cur, base *results) error {
	fmt.Fprintf(w, "cpu: %s\n", orUnknown(cur.cpu))
	if base != nil {
		fmt.Fprintf(w, "baseline cpu: %s\n", orUnknown(base.cpu))
	}
	fmt.Fprintln(w, "medians of each run; anchor÷ours above 1.00× means the anchor is slower than ours")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	cpu := cur.hasCPU()
	head := "benchmark\tanchor\tours ns/op\tanchor ns/op\tanchor÷ours\tB/op ours|anchor\tallocs ours|anchor"
	if cpu {
		head += "\tCPU anchor÷ours"
	}
	if base != nil {
		head += "\tbaseline anchor÷ours"
	}
	fmt.Fprintln(tw, head)
	rows := 0
	for _, group := range cur.order {
		g := cur.groups[group]
		if g["ours"] == nil || len(g["ours"]["sec/op"]) == 0 { // a paired benchmark's are in the second table
			continue
		}
		for _, impl := range anchors(g) {
			row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", group, impl,
				ns(g["ours"]), ns(g[impl]), ratio(g, impl, "sec/op"), pair(g, impl, "B/op"), pair(g, impl, "allocs/op"))
			if cpu {
				row += "\t" + cpuRatio(g, impl)
			}
			if base != nil {
				b := "-"
				if bg := base.groups[group]; bg != nil {
					b = ratio(bg, impl, "sec/op")
				}
				row += "\t" + b
			}
			fmt.Fprintln(tw, row)
			rows++
		}
	}
	if rows == 0 && !cur.paired() {
		return errors.New("no benchmark has both impl=ours and an anchor (name contenders impl=NAME)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return reportCustom(w, cur, base)
}

// paired reports whether a paired benchmark gave ours a time per cycle.
func (rs *results) paired() bool {
	for _, g := range rs.groups {
		if len(g["ours"]["ns/cycle"]) > 0 {
			return true
		}
	}
	return false
}

// anchors lists a group's contenders other than ours, sorted.
func anchors(g map[string]map[string][]float64) []string {
	var impls []string
	for impl := range g {
		if impl != "ours" {
			impls = append(impls, impl)
		}
	}
	sort.Strings(impls)
	return impls
}

// number prints a median with no exponent: whole above 100, three
// significant digits below.
func number(v float64) string {
	if v >= 100 || v <= -100 {
		return fmt.Sprintf("%.0f", v)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// standard are the units every benchmark line has, or -benchmem adds.
var standard = map[string]bool{"sec/op": true, "B/op": true, "allocs/op": true}

// reportCustom prints, for units a benchmark reports itself (b.ReportMetric,
// e.g. cpu-ns/op), each anchor's median ÷ ours, in a second table. It prints
// nothing when no benchmark has such a unit on both sides.
func reportCustom(w io.Writer, cur, base *results) error {
	type row struct{ group, impl, unit string }
	var rows []row
	for _, group := range cur.order {
		g := cur.groups[group]
		if g["ours"] == nil {
			continue
		}
		var units []string
		for u := range g["ours"] {
			if !standard[u] {
				units = append(units, u)
			}
		}
		sort.Strings(units)
		for _, u := range units {
			for _, impl := range anchors(g) {
				if len(g[impl][u]) > 0 {
					rows = append(rows, row{group, impl, u})
				}
			}
		}
	}
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nmetrics the benchmarks report themselves, medians; above 1.00× ours is better (anchor÷ours, but ours÷anchor for rates per second)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "benchmark\tanchor\tunit\tours\tanchor\tours better by"
	if base != nil {
		head += "\tbaseline"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		g := cur.groups[r.group]
		unit, scale := r.unit, 1.0
		if u, ok := strings.CutSuffix(unit, "sec/op"); ok { // benchfmt turned cpu-ns/op into cpu-sec/op
			unit, scale = u+"ns/op", 1e9
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", r.group, r.impl, unit,
			number(scale*median(g["ours"][r.unit])), number(scale*median(g[r.impl][r.unit])), ratio(g, r.impl, r.unit))
		if base != nil {
			b := "-"
			if bg := base.groups[r.group]; bg != nil {
				b = ratio(bg, r.impl, r.unit)
			}
			line += "\t" + b
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func ns(units map[string][]float64) string {
	v := units["sec/op"]
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", median(v)*1e9)
}

func orUnknown(s string) string {
	if s == "" {
		return "(not recorded)"
	}
	return s
}
