package availability

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.InDelta(t, 3*0.999*0.999-2*0.999*0.999*0.999, app, 1e-15, "2 of 3")
	reg := 0.9999 * app * Parallel(0.9995, 0.9995)
	want := 0.9999 * Parallel(reg, reg)

	sys := InSeries("system", Component("dns", 0.9999), InParallel("regions", region("region-a"), region("region-b")))
	require.NoError(t, sys.Validate())
	assert.InDelta(t, want, sys.Availability(), 1e-15)
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
	require.Len(t, imps, nodes, "one impact per node")
	require.Same(t, sys, imps[0].Node, "the root comes first")
	require.InDelta(t, 1, imps[0].Share, 1e-9, "the root causes all downtime")
	paths := map[string]bool{}
	for _, imp := range imps {
		assert.False(t, paths[imp.Path], "duplicate path %q", imp.Path)
		paths[imp.Path] = true
	}

	// The single global DNS is the one non-redundant part: it must dominate.
	dom := sys.Dominant()
	require.Equal(t, "system/dns", dom.Path)
	assert.Greater(t, dom.Share, 0.99, "dns share of all downtime")

	// A component in series with everything has Birnbaum importance equal to
	// the availability of the rest of the system.
	rest := InParallel("regions", region("region-a"), region("region-b")).Availability()
	assert.InDelta(t, rest, dom.Birnbaum, 1e-12, "dns Birnbaum")

	// Inside a region the load balancer (single, 99.99%) outweighs the db pair
	// and the app replicas.
	byPath := map[string]Impact{}
	for _, imp := range imps {
		byPath[imp.Path] = imp
	}
	lb, db, app := byPath["system/regions/region-a/lb"], byPath["system/regions/region-a/db"], byPath["system/regions/region-a/app"]
	assert.Greater(t, lb.IfPerfect, app.IfPerfect, "lb outweighs the app replicas")
	assert.Greater(t, app.IfPerfect, db.IfPerfect, "app replicas outweigh the db pair")
	for _, imp := range imps {
		assert.False(t, imp.IfPerfect < -1e-15 || imp.Birnbaum < -1e-15 || imp.Share > 1+1e-9, "%s: impossible impact %+v", imp.Path, imp)
	}
}

func TestImpactsPrefixDrawsATree(t *testing.T) {
	t.Parallel()
	sys := InSeries("s", InParallel("p", Component("a", 0.9), Component("b", 0.9)), Component("c", 0.9))
	var lines []string
	for _, imp := range sys.Impacts() {
		lines = append(lines, imp.Prefix+imp.Node.Name)
	}
	assert.Equal(t, "s\n├─ p\n│  ├─ a\n│  └─ b\n└─ c", strings.Join(lines, "\n"))
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
		if tt.want == "" {
			assert.NoError(t, err, tt.name)
			continue
		}
		assert.ErrorContains(t, err, tt.want, tt.name)
	}
}

func TestPerfectSystemHasNoShares(t *testing.T) {
	t.Parallel()
	sys := InSeries("s", Component("a", 1), Component("b", 1))
	for _, imp := range sys.Impacts() {
		assert.False(t, imp.Share != 0 || imp.IfPerfect != 0 || math.IsNaN(imp.Share), "%s: %+v, want zero impact in a system that never fails", imp.Path, imp)
	}
}
