package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/sysdesign-masterclass/golang/part09-hashing/measure"
	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

// remapDemo measures the keys each scheme moves when a node joins or leaves,
// then replays the article's four-key example with real hashes.
func remapDemo(_ context.Context, w io.Writer, c config) error {
	section(w, "Keys moved when membership changes (%d keys; modulo hashes with CRC32, jump with xxhash64)", len(c.keys))
	rows := measure.Remap(c.keys,
		measure.Modulo(ring.CRC32),
		named(measure.Ring(200, ring.CRC32), "ring V=200 crc32 (article)"),
		named(measure.Ring(200, ring.XXHash), "ring V=200 xxhash (default)"),
		measure.Jump(),
		named(measure.BoundedLoad(200, 0.25, ring.XXHash, c.keys), "bounded-load ε=0.25 xxhash"),
		named(measure.BoundedLoad(200, 0.05, ring.XXHash, c.keys), "bounded-load ε=0.05 xxhash"),
		named(measure.BoundedLoad(200, 0.05, ring.CRC32, c.keys), "bounded-load ε=0.05 crc32"),
	)
	if err := measure.WriteRemapTable(w, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "article: modulo 3→4 moves ~75%%, a ring ~1/4; measured %s and %s (crc32) / %s (xxhash).\n",
		pct(rows[0].Add3to4), pct(rows[1].Add3to4), pct(rows[2].Add3to4))

	// The article's example uses made-up hashes 47, 91, 33, 67; these are the
	// real ones.
	ex := []string{"user:100", "user:200", "user:300", "user:400"}
	mod3, mod4 := measure.Modulo(ring.CRC32).Build(measure.Nodes(3, 0)), measure.Modulo(ring.CRC32).Build(measure.Nodes(4, 0))
	ring3, ring4 := measure.Ring(200, ring.XXHash).Build(measure.Nodes(3, 0)), measure.Ring(200, ring.XXHash).Build(measure.Nodes(4, 0))
	var out [][]string
	movedMod, movedRing := 0, 0
	for _, k := range ex {
		if mod3(k) != mod4(k) {
			movedMod++
		}
		if ring3(k) != ring4(k) {
			movedRing++
		}
		out = append(out, []string{k, strconv.FormatUint(uint64(ring.CRC32(k)), 10), mod3(k), mod4(k), ring3(k), ring4(k)})
	}
	fmt.Fprintln(w, "\nthe article's example keys, real CRC32 (the article's hashes 47, 91, 33, 67 are made up):")
	if err := table(w, []string{"key", "crc32", "mod 3", "mod 4", "ring 3", "ring 4"}, out); err != nil {
		return err
	}
	fmt.Fprintf(w, "moved 3→4: modulo %d of %d, ring %d of %d (the article: all 4 with modulo).\n", movedMod, len(ex), movedRing, len(ex))
	return nil
}

func named(s measure.Scheme, name string) measure.Scheme { s.Name = name; return s }
