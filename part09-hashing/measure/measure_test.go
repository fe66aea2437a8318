package measure

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sysdesign-masterclass/golang/part09-hashing/ring"
)

func TestSpreadOf(t *testing.T) {
	s := SpreadOf([]int{2, 4, 4, 4, 5, 5, 7, 9})
	if s.Mean != 5 || s.StdDev != 2 || s.Max != 9 {
		t.Fatalf("SpreadOf = %+v, want mean 5, std-dev 2, max 9", s)
	}
	if s.CV() != 0.4 || s.MaxOverMean() != 1.8 {
		t.Fatalf("CV %v, max/mean %v", s.CV(), s.MaxOverMean())
	}
	if (SpreadOf(nil) != Spread{}) {
		t.Fatal("empty counts")
	}
}

func TestKeysAndNodes(t *testing.T) {
	k := Keys(3)
	if strings.Join(k, ",") != "key:0,key:1,key:2" {
		t.Fatalf("Keys = %v", k)
	}
	if n := Nodes(2, 0); n[1] != "node-1" {
		t.Fatalf("Nodes(2, 0) = %v", n)
	}
	if n := Nodes(2, 3); n[0] != "s3-node-0" {
		t.Fatalf("Nodes(2, 3) = %v", n)
	}
}

func TestLoadsCountsEveryKey(t *testing.T) {
	nodes := []string{"a", "b"}
	even := Loads(nodes, Keys(1000), func(k string) string { return nodes[(k[len(k)-1]-'0')%2] })
	if even.Mean != 500 || even.StdDev != 0 || even.Max != 500 {
		t.Fatalf("alternating placement: %+v", even)
	}
	skew := Loads(nodes, Keys(1000), func(string) string { return "a" })
	if skew.Mean != 500 || skew.Max != 1000 || skew.CV() != 1 {
		t.Fatalf("all on one node: %+v", skew)
	}
}

// With a well-mixed hash the measured spread follows the random-arc model
// (≈1/√V), not the article's 1/√(N·V): it is within 30% of the former and
// closer to it than to the latter.
func TestRandomArcModelFitsAWellMixedHash(t *testing.T) {
	keys := Keys(40_000)
	for _, st := range LoadTable([]int{5, 10}, []int{10, 100, 400}, keys, 20, ring.XXHash) {
		model := ArcModel(st.N, st.V, len(keys))
		if r := st.CV / model; r < 0.7 || r > 1.3 {
			t.Errorf("N=%d V=%d: measured %.4f, arc model %.4f (ratio %.2f)", st.N, st.V, st.CV, model, r)
		}
		article := ArticleModel(st.N, st.V)
		if math.Abs(math.Log(st.CV/model)) >= math.Abs(math.Log(st.CV/article)) {
			t.Errorf("N=%d V=%d: measured %.4f is closer to 1/√(N·V) = %.4f than to the arc model %.4f",
				st.N, st.V, st.CV, article, model)
		}
	}
}

func TestRemapSchemes(t *testing.T) {
	keys := Keys(30_000)
	rows := Remap(keys, Modulo(ring.CRC32), Ring(200, ring.XXHash), Jump(), BoundedLoad(200, 0.1, ring.CRC32, keys))
	within := func(name string, got, lo, hi float64) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s = %.3f, want within [%.3f, %.3f]", name, got, lo, hi)
		}
	}
	mod, rg, jmp, bl := rows[0], rows[1], rows[2], rows[3]
	within("modulo 3→4", mod.Add3to4, 0.70, 0.80) // h mod 3 == h mod 4 for 3 of every 12 hashes
	within("modulo 10→11", mod.Add10to11, 0.85, 0.95)
	within("ring 3→4", rg.Add3to4, 0.15, 0.35)
	within("ring remove node-1", rg.RemoveMiddle, 0.15, 0.35)
	within("ring 10→11", rg.Add10to11, 0.05, 0.14)
	within("jump 3→4", jmp.Add3to4, 0.23, 0.27)
	within("jump 10→11", jmp.Add10to11, 0.08, 0.10)
	within("jump remove node-1 (renumbers)", jmp.RemoveMiddle, 0.40, 0.80)
	within("modulo max/mean", mod.MaxOverMean10, 1, 1.05)
	within("bounded-load max/mean", bl.MaxOverMean10, 1, 1.1+10.0/3000) // ceil((1+ε)·mean)
	if bl.Add3to4 < 0.2 || bl.Add3to4 > 0.6 {
		t.Errorf("bounded-load 3→4 moved %.3f", bl.Add3to4)
	}
	if rows[1].Scheme != "ring V=200" {
		t.Errorf("scheme name %q", rows[1].Scheme)
	}
	var buf bytes.Buffer
	if err := WriteRemapTable(&buf, rows); err != nil || !strings.Contains(buf.String(), "minimum possible") {
		t.Fatalf("table: %v\n%s", err, buf.String())
	}
}

func TestMoved(t *testing.T) {
	same := func(k string) string { return "a" }
	flip := func(k string) string {
		if k == "key:1" {
			return "b"
		}
		return "a"
	}
	if Moved(Keys(4), same, flip) != 0.25 || Moved(nil, same, flip) != 0 {
		t.Fatal("Moved")
	}
}

func TestChartIsWellFormedSVG(t *testing.T) {
	keys := Keys(2000)
	st := LoadTable([]int{5, 10}, []int{1, 10, 100}, keys, 1, ring.CRC32)
	var buf bytes.Buffer
	if err := WriteLoadTable(&buf, st, len(keys)); err != nil || !strings.Contains(buf.String(), "article (N=5)") {
		t.Fatalf("table: %v", err)
	}
	buf.Reset()
	curves := StdDevCurves([]NamedTable{{Hash: "crc32", Stats: st}}, len(keys))
	if err := WriteChart(&buf, "test <chart>", curves); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&buf)
	elems := map[string]int{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("invalid SVG: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elems[se.Name.Local]++
		}
	}
	// 2 measured + 2 article-model + 2 arc-model lines; 1 marker-only series.
	if len(curves) != 7 || elems["polyline"] != 6 || elems["svg"] != 1 {
		t.Fatalf("%d curves, elements %v", len(curves), elems)
	}
	for _, c := range curves {
		for _, p := range c.Points {
			if math.IsNaN(p[1]) || p[0] < 1 || p[0] > 1000 {
				t.Fatalf("curve %s has point %v", c.Label, p)
			}
		}
	}
}

// The CRC32 ring's excess spread comes from its vnode points, not from the
// article's sequential keys: random keys on the same ring spread just as badly.
func TestCRC32ExcessSpreadIsNotTheKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	random := make([]string, 50_000)
	for i := range random {
		random[i] = fmt.Sprintf("%016x", rng.Uint64())
	}
	model := ArcModel(10, 200, len(random))
	for name, keys := range map[string][]string{"key:%d": Keys(len(random)), "random": random} {
		st := LoadTable([]int{10}, []int{200}, keys, 5, ring.CRC32)[0]
		if st.CV < 2*model {
			t.Errorf("%s keys on a CRC32 ring: std-dev/mean %.3f, under twice the arc model %.3f", name, st.CV, model)
		}
		xx := LoadTable([]int{10}, []int{200}, keys, 5, ring.XXHash)[0]
		if xx.CV > 1.3*model {
			t.Errorf("%s keys on an xxhash ring: std-dev/mean %.3f, over the arc model %.3f", name, xx.CV, model)
		}
	}
}
