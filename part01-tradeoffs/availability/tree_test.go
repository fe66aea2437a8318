package availability

import (
	"math"
	"strings"
	"testing"
)

// region is one region of the chapter's reference architecture: a load
// balancer in front of 3 app replicas (2 needed for peak load) in front of a
// database primary with a replica that can take over.
func region(name string) *Node {
	return InSeries(name,
		Component("lb", 0.9999),
		AtLeastOf("app", 2, Replicas("app", 3, 0.999)...),
		InParallel("db", Component("primary", 0.9995), Component("replica", 0.9995)),
	)
}

func TestTreeMatchesHandComputation(t *testing.T) {
	t.Parallel()
	app := AtLeast(2, 0.999, 0.999, 0.999) // 3a²−2a³
	if want := 3*0.999*0.999 - 2*0.999*0.999*0.999; !near(app, want, 1e-15) {
		t.Fatalf("2 of 3 = %.15f, want %.15f", app, want)
	}
	reg := 0.9999 * app * Parallel(0.9995, 0.9995)
	want := 0.9999 * Parallel(reg, reg)

	sys := InSeries("system", Component("dns", 0.9999), InParallel("regions", region("region-a"), region("region-b")))
	if err := sys.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := sys.Availability(); !near(got, want, 1e-15) {
		t.Fatalf("tree availability = %.15f, want %.15f", got, want)
	}
}

func TestImpactsFindTheDominantComponent(t *testing.T) {
	t.Parallel()
	sys := InSeries("system", Component("dns", 0.9999), InParallel("regions", region("region-a"), region("region-b")))
	imps := sys.Impacts()

	// One row per node, root first, paths unique.
	var nodes int
	var count func(*Node)
	count = func(n *Node) {
		nodes++
		for _, c := range n.Children {
			count(c)
		}
	}
	count(sys)
	if len(imps) != nodes {
		t.Fatalf("%d impacts for %d nodes", len(imps), nodes)
	}
	if imps[0].Node != sys || !near(imps[0].Share, 1, 1e-9) {
		t.Fatalf("root impact = %+v, want the root with share 1", imps[0])
	}
	paths := map[string]bool{}
	for _, imp := range imps {
		if paths[imp.Path] {
			t.Errorf("duplicate path %q", imp.Path)
		}
		paths[imp.Path] = true
	}

	// The single global DNS is the one non-redundant part: it must dominate.
	dom := sys.Dominant()
	if dom.Path != "system/dns" {
		t.Fatalf("dominant = %s, want system/dns", dom.Path)
	}
	if dom.Share < 0.99 {
		t.Errorf("dns share = %.4f, want > 0.99 of all downtime", dom.Share)
	}

	// A component in series with everything has Birnbaum importance equal to
	// the availability of the rest of the system.
	rest := InParallel("regions", region("region-a"), region("region-b")).Availability()
	if !near(dom.Birnbaum, rest, 1e-12) {
		t.Errorf("dns Birnbaum = %.12f, want %.12f", dom.Birnbaum, rest)
	}

	// Inside a region the load balancer (single, 99.99%) outweighs the db pair
	// and the app replicas.
	byPath := map[string]Impact{}
	for _, imp := range imps {
		byPath[imp.Path] = imp
	}
	lb, db, app := byPath["system/regions/region-a/lb"], byPath["system/regions/region-a/db"], byPath["system/regions/region-a/app"]
	if !(lb.IfPerfect > app.IfPerfect && app.IfPerfect > db.IfPerfect) {
		t.Errorf("region ranking lb %.3g > app %.3g > db %.3g does not hold", lb.IfPerfect, app.IfPerfect, db.IfPerfect)
	}
	for _, imp := range imps {
		if imp.IfPerfect < -1e-15 || imp.Birnbaum < -1e-15 || imp.Share > 1+1e-9 {
			t.Errorf("%s: impossible impact %+v", imp.Path, imp)
		}
	}
}

func TestImpactsPrefixDrawsATree(t *testing.T) {
	t.Parallel()
	sys := InSeries("s", InParallel("p", Component("a", 0.9), Component("b", 0.9)), Component("c", 0.9))
	var lines []string
	for _, imp := range sys.Impacts() {
		lines = append(lines, imp.Prefix+imp.Node.Name)
	}
	want := "s\n├─ p\n│  ├─ a\n│  └─ b\n└─ c"
	if got := strings.Join(lines, "\n"); got != want {
		t.Errorf("tree drawing:\n%s\nwant:\n%s", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	shared := Component("shared", 0.99)
	tests := []struct {
		name string
		tree *Node
		want string // substring of the error; "" means valid
	}{
		{"valid", InSeries("s", Component("a", 0.9)), ""},
		{"availability above 1", InSeries("s", Component("a", 1.5)), "s/a: availability 1.5"},
		{"empty composite", InParallel("p"), "without children"},
		{"k too large", AtLeastOf("k", 3, Component("a", 0.9)), "k=3 outside 1..1"},
		{"node used twice", InParallel("p", shared, shared), "appears twice"},
		{"nil child", InSeries("s", nil), "nil node"},
		{"component with children", &Node{Name: "c", Kind: KindComponent, A: 0.5, Children: []*Node{Component("x", 1)}}, "has no children"},
	}
	for _, tt := range tests {
		err := tt.tree.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}

func TestPerfectSystemHasNoShares(t *testing.T) {
	t.Parallel()
	sys := InSeries("s", Component("a", 1), Component("b", 1))
	for _, imp := range sys.Impacts() {
		if imp.Share != 0 || imp.IfPerfect != 0 || math.IsNaN(imp.Share) {
			t.Errorf("%s: %+v, want zero impact in a system that never fails", imp.Path, imp)
		}
	}
}
