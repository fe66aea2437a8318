// Command part09-hashing regenerates chapter 9's numbers: keys moved by modulo
// hashing vs a consistent hash ring (and jump hash, bounded loads), the load
// std-dev table by virtual nodes, GetN replica sets, and Redis Cluster slots.
//
//	go run ./part09-hashing                      # everything
//	go run ./part09-hashing -mode stddev -hashes crc32,xxhash,fnv1a
//	go run ./part09-hashing -chart part09-hashing/stddev.svg
package main

//go:generate go run . -mode stddev -chart stddev.svg

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/sysdesign-masterclass/golang/part09-hashing/measure"
	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
	"github.com/sysdesign-masterclass/golang/part09-hashing/slot"
)

var (
	mode   = flag.String("mode", "all", "what to run: all | remap | stddev | getn | slots")
	nkeys  = flag.Int("keys", 100_000, `number of keys "key:%d" to place`)
	sets   = flag.Int("sets", 20, "node-name sets averaged per std-dev cell")
	hashes = flag.String("hashes", "crc32,xxhash", "hashes for the std-dev table: crc32, xxhash, fnv1a")
	chart  = flag.String("chart", "", "write the std-dev vs V chart (SVG) to this file")
)

func main() {
	log.SetFlags(0)
	flag.Parse()
	keys := measure.Keys(*nkeys)
	run := func(m string) bool { return *mode == "all" || *mode == m }

	if run("remap") {
		section("Keys moved when membership changes (%d keys; modulo hashes with CRC32, jump with xxhash64)", len(keys))
		rows := measure.Remap(keys,
			measure.Modulo(ring.CRC32),
			named(measure.Ring(200, ring.CRC32), "ring V=200 crc32"),
			named(measure.Ring(200, ring.XXHash), "ring V=200 xxhash"),
			measure.Jump(),
			named(measure.BoundedLoad(200, 0.25, ring.CRC32, keys), "bounded-load ε=0.25 crc32"),
			named(measure.BoundedLoad(200, 0.05, ring.CRC32, keys), "bounded-load ε=0.05 crc32"),
			named(measure.BoundedLoad(200, 0.05, ring.XXHash, keys), "bounded-load ε=0.05 xxhash"),
		)
		check(measure.WriteRemapTable(os.Stdout, rows))
		fmt.Printf("article: modulo 3→4 moves ~75%%; measured %.1f%%. A ring moves about K/(N+1).\n", 100*rows[0].Add3to4)
	}

	if run("stddev") || *chart != "" {
		var tables []measure.NamedTable
		for _, name := range strings.Split(*hashes, ",") {
			h, ok := ring.Hashes[name]
			if !ok {
				log.Fatalf("unknown hash %q (want crc32, xxhash or fnv1a)", name)
			}
			start := time.Now()
			st := measure.LoadTable([]int{5, 10}, []int{1, 10, 100, 150, 200, 256, 1000}, keys, *sets, h)
			tables = append(tables, measure.NamedTable{Hash: name, Stats: st})
			section("Load std-dev / mean, hash %s, %d keys (node-i: nodes node-0…; avg: RMS over %d node-name sets; %s)",
				name, len(keys), *sets, time.Since(start).Round(time.Millisecond))
			check(measure.WriteLoadTable(os.Stdout, st, len(keys)))
		}
		fmt.Println("arc model = √((N−1)/(N·V+1) + (N−1)/keys) ≈ 1/√V: each node owns V random arcs.")
		if *chart != "" {
			writeChart(*chart, tables, len(keys))
		}
	}

	if run("getn") {
		r := ring.New(ring.DefaultVirtualNodes)
		for _, n := range measure.Nodes(5, 0) {
			r.AddNode(n)
		}
		section("GetNode / GetN on a 5-node ring (V=%d, CRC32)", ring.DefaultVirtualNodes)
		for _, k := range []string{"user:1001", "session:7f3a", "order:42", "cart:alice"} {
			fmt.Printf("%-13s GetNode=%-7s GetN(3)=%v GetN(9)=%v\n", k, r.GetNode(k), r.GetN(k, 3), r.GetN(k, 9))
		}
	}

	if run("slots") {
		section("Redis Cluster slots: CRC16-XMODEM(hash tag) mod %d", slot.Count)
		for _, k := range slotExamples {
			fmt.Printf("%-22q hashes %-16q slot %5d\n", k, slot.HashTag(k), slot.Of(k))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		liveCluster(ctx, slotExamples)
	}
}

// slotExamples covers plain keys, hash tags and the edge cases: an empty tag
// ("{}") and a lone "{" hash the whole key, only the first tag counts.
var slotExamples = []string{
	"user:1001", "{user:1001}:profile", "{user:1001}:orders", "foo", "foo{}{bar}",
	"foo{bar}{zap}", "foo{", "{{x}}", "",
}

func named(s measure.Scheme, name string) measure.Scheme { s.Name = name; return s }

func section(format string, a ...any) { fmt.Printf("\n== "+format+"\n", a...) }

func writeChart(path string, tables []measure.NamedTable, keys int) {
	f, err := os.Create(path)
	check(err)
	check(measure.WriteChart(f, fmt.Sprintf("Ring load spread vs virtual nodes (%d keys \"key:%%d\", RMS over %d node-name sets)", keys, *sets),
		measure.StdDevCurves(tables, keys)))
	check(f.Close())
	fmt.Println("wrote", path)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
