package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/sysdesign-masterclass/golang/part09-hashing/measure"
	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

// stddevDemo regenerates the article's virtual-node table, re-runs its
// benchmark with its own node names, checks its advice for small clusters and
// its three-node picture, and writes the chart when asked.
func stddevDemo(ctx context.Context, w io.Writer, c config) error {
	var tables []measure.NamedTable
	for _, name := range c.hashes {
		start := time.Now()
		st := measure.LoadTable([]int{5, 10}, []int{1, 10, 100, 150, 200, 256, 1000}, c.keys, c.sets, ring.Hashes[name])
		tables = append(tables, measure.NamedTable{Hash: name, Stats: st})
		section(w, "Load std-dev / mean, hash %s, %d keys (node-i: nodes node-0…; avg: RMS over %d node-name sets; %s)",
			name, len(c.keys), c.sets, time.Since(start).Round(time.Millisecond))
		if err := measure.WriteLoadTable(w, st, len(c.keys)); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "arc model = √((N−1)/(N·V+1) + (N−1)/keys) ≈ 1/√V: each node owns V random arcs.")

	section(w, "The article's BenchmarkLoadDistribution re-run: nodes node-a…node-e, %d keys", len(c.keys))
	var rows [][]string
	for _, v := range []int{1, 10, 100, 200} {
		crc := measure.RingSpread(measure.ArticleNodes, c.keys, v, ring.CRC32)
		xx := measure.RingSpread(measure.ArticleNodes, c.keys, v, ring.XXHash)
		rows = append(rows, []string{strconv.Itoa(v), pct(measure.ArticleBenchmark[v]), pct(measure.Article[v]),
			pct(crc.CV()), fmt.Sprintf("%.2f", crc.MaxOverMean()), pct(xx.CV()), fmt.Sprintf("%.2f", xx.MaxOverMean())})
	}
	if err := table(w, []string{"V", "its comments", "its table", "crc32", "max/mean", "xxhash", "max/mean"}, rows); err != nil {
		return err
	}

	section(w, "V=1, \"some nodes 5×+ overloaded\": hottest node / mean by N (%d keys; avg over %d node-name sets)", len(c.keys), c.sets)
	rows = rows[:0]
	for _, h := range measure.HottestAtV1([]int{3, 5, 10, 20, 100}, c.keys, c.sets) {
		rows = append(rows, []string{strconv.Itoa(h.N), fmt.Sprintf("%.2f", h.CRC32), fmt.Sprintf("%.2f", h.XXHash),
			fmt.Sprintf("%.2f", h.XXHashAvg), fmt.Sprintf("%.2f", measure.RandomArcsMaxOverMean(h.N)), strconv.Itoa(h.N)})
	}
	if err := table(w, []string{"N", "crc32 node-i", "xxhash node-i", "xxhash avg", "random arcs H_N", "at most"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(w, "5× needs N ≥ 5 nodes; CRC32 reaches it at N=5 (one node takes nearly every key), a well-mixed hash near N=100.")

	ns := []int{2, 3, 4, 5, 10, 20}
	section(w, "Fewer nodes need more vnodes? Spread at V=200 by N (xxhash, %d keys, %d node-name sets)", len(c.keys), c.sets)
	rows = rows[:0]
	for _, st := range measure.LoadTable(ns, []int{200}, c.keys, c.sets, ring.XXHash) {
		rows = append(rows, []string{strconv.Itoa(st.N), pct(st.CV), pct(measure.ArcModel(st.N, 200, len(c.keys))),
			pct(measure.ArticleModel(st.N, 200)), fmt.Sprintf("%.3f", st.MaxOverMean)})
	}
	if err := table(w, []string{"N", "std-dev/mean", "arc model", "1/√(NV)", "max/mean"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(w, "the spread per node does not grow as N falls (it shrinks a little): V sets it, about 1/√V.")

	section(w, "Three nodes, one point each (V=1, xxhash): the article's 5%% / 70%% / 25%% picture")
	abc := measure.ArticleNodes[:3]
	r := ring.New(1)
	for _, n := range abc {
		r.AddNode(n)
	}
	share := map[string]int{}
	for _, k := range c.keys {
		share[r.GetNode(k)]++
	}
	var largest float64
	for set := range c.sets {
		sp := measure.RingSpread(measure.Nodes(3, set), c.keys, 1, ring.XXHash)
		largest += sp.Max / float64(len(c.keys)) / float64(c.sets)
	}
	fmt.Fprintf(w, "%s %s, %s %s, %s %s; largest share averaged over %d node-name sets %s (three random arcs: 11/18 = 61.1%%)\n",
		abc[0], pct(float64(share[abc[0]])/float64(len(c.keys))), abc[1], pct(float64(share[abc[1]])/float64(len(c.keys))),
		abc[2], pct(float64(share[abc[2]])/float64(len(c.keys))), c.sets, pct(largest))

	if c.chart == "" {
		return nil
	}
	if !slices.Contains(c.hashes, "xxhash") || !slices.Contains(c.hashes, "crc32") {
		fmt.Fprintln(w, "note: the committed chart draws -hashes crc32,xxhash")
	}
	f, err := os.Create(c.chart)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("Ring load spread vs virtual nodes (%d keys \"key:%%d\", RMS over %d node-name sets)", len(c.keys), c.sets)
	if err := measure.WriteChart(f, title, measure.StdDevCurves(tables, len(c.keys))); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintln(w, "wrote", c.chart)
	return nil
}
