package availability

import (
	"errors"
	"fmt"
	"strings"
)

// Kind says how a Node combines its children.
type Kind int

// The kinds of node in an availability tree.
const (
	KindComponent Kind = iota // a leaf with its own availability
	KindSeries                // up only if every child is up
	KindParallel              // up if any child is up
	KindAtLeast               // up if at least K children are up
)

// Node is one element of an availability tree: a component (leaf) or a
// composition of child nodes. Build trees with Component, InSeries, InParallel
// and AtLeastOf; each Node may appear only once in a tree, because a component
// shared by two branches is a common-mode dependency the independent-failure
// formulas cannot express (model it once, in series above both branches).
type Node struct {
	Name     string
	Kind     Kind
	A        float64 // availability of a KindComponent leaf
	K        int     // children that must be up, for KindAtLeast
	Children []*Node
}

// Component returns a leaf with availability a.
func Component(name string, a float64) *Node {
	return &Node{Name: name, Kind: KindComponent, A: a}
}

// InSeries returns a node that is up only while all children are up.
func InSeries(name string, children ...*Node) *Node {
	return &Node{Name: name, Kind: KindSeries, Children: children}
}

// InParallel returns a node that is up while any child is up (redundancy with
// perfect, instant failover between the children).
func InParallel(name string, children ...*Node) *Node {
	return &Node{Name: name, Kind: KindParallel, Children: children}
}

// AtLeastOf returns a node that is up while at least k children are up, e.g.
// three app replicas of which two carry peak load.
func AtLeastOf(name string, k int, children ...*Node) *Node {
	return &Node{Name: name, Kind: KindAtLeast, K: k, Children: children}
}

// Replicas returns n identical components named prefix-1 … prefix-n.
func Replicas(prefix string, n int, a float64) []*Node {
	out := make([]*Node, n)
	for i := range out {
		out[i] = Component(fmt.Sprintf("%s-%d", prefix, i+1), a)
	}
	return out
}

// Describe names the node's rule: "component", "series", "1 of 2", "2 of 3".
func (n *Node) Describe() string {
	switch n.Kind {
	case KindComponent:
		return "component"
	case KindSeries:
		return "series"
	case KindParallel:
		return fmt.Sprintf("1 of %d", len(n.Children))
	case KindAtLeast:
		return fmt.Sprintf("%d of %d", n.K, len(n.Children))
	}
	return "unknown"
}

// Validate reports every problem that would make Availability meaningless: a
// leaf outside [0, 1], a composite without children, k outside 1..n, or a node
// used twice.
func (n *Node) Validate() error {
	seen := map[*Node]bool{}
	var errs []error
	var walk func(n *Node, path string)
	walk = func(n *Node, path string) {
		if n == nil {
			errs = append(errs, fmt.Errorf("%s: nil node", path))
			return
		}
		path = join(path, n.Name)
		if seen[n] {
			errs = append(errs, fmt.Errorf("%s: node appears twice in the tree", path))
			return
		}
		seen[n] = true
		switch n.Kind {
		case KindComponent:
			if err := Check(n.A); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", path, err))
			}
			if len(n.Children) > 0 {
				errs = append(errs, fmt.Errorf("%s: a component has no children", path))
			}
		case KindSeries, KindParallel, KindAtLeast:
			if len(n.Children) == 0 {
				errs = append(errs, fmt.Errorf("%s: %s node without children", path, n.Describe()))
			}
			if n.Kind == KindAtLeast && (n.K < 1 || n.K > len(n.Children)) {
				errs = append(errs, fmt.Errorf("%s: k=%d outside 1..%d", path, n.K, len(n.Children)))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: unknown kind %d", path, n.Kind))
		}
		for _, c := range n.Children {
			walk(c, path)
		}
	}
	walk(n, "")
	return errors.Join(errs...)
}

// Availability evaluates the tree bottom-up. Call Validate first on trees built
// from untrusted input.
func (n *Node) Availability() float64 {
	return n.eval(nil)
}

// eval computes availability with some nodes pinned to a fixed value (1 = never
// fails, 0 = always down): the conditioning that importance measures need.
func (n *Node) eval(pinned map[*Node]float64) float64 {
	if a, ok := pinned[n]; ok {
		return a
	}
	if n.Kind == KindComponent {
		return n.A
	}
	as := make([]float64, len(n.Children))
	for i, c := range n.Children {
		as[i] = c.eval(pinned)
	}
	switch n.Kind {
	case KindSeries:
		return Series(as...)
	case KindParallel:
		return Parallel(as...)
	default:
		return AtLeast(n.K, as...)
	}
}

// Impact says how much one node of a tree matters to the whole system.
type Impact struct {
	Node   *Node
	Path   string // names from the root, joined by "/"
	Prefix string // box-drawing indentation, for printing the tree
	Depth  int

	// Availability of this node on its own.
	Availability float64
	// Birnbaum importance: A(system | node up) − A(system | node down), the
	// system availability gained per unit of this node's availability.
	Birnbaum float64
	// IfPerfect is the system unavailability that disappears if this node never
	// failed: A(system | node up) − A(system). Multiply by a period for downtime.
	IfPerfect float64
	// Share is IfPerfect as a fraction of the system's unavailability. Shares of
	// redundant nodes do not add up to 1: removing one replica's failures helps
	// only while its peers are down too.
	Share float64
}

// Impacts returns one Impact per node, root first, in depth-first order (the
// order in which a tree is printed).
func (n *Node) Impacts() []Impact {
	sys := n.Availability()
	var out []Impact
	var walk func(m *Node, path, indent string, depth int, last bool)
	walk = func(m *Node, path, indent string, depth int, last bool) {
		path = join(path, m.Name)
		up := n.eval(map[*Node]float64{m: 1})
		down := n.eval(map[*Node]float64{m: 0})
		prefix, childIndent := "", ""
		if depth > 0 {
			branch, cont := "├─ ", "│  "
			if last {
				branch, cont = "└─ ", "   "
			}
			prefix, childIndent = indent+branch, indent+cont
		}
		imp := Impact{
			Node: m, Path: path, Prefix: prefix, Depth: depth,
			Availability: m.eval(nil),
			Birnbaum:     up - down,
			IfPerfect:    up - sys,
		}
		if sys < 1 {
			imp.Share = imp.IfPerfect / (1 - sys)
		}
		out = append(out, imp)
		for i, c := range m.Children {
			walk(c, path, childIndent, depth+1, i == len(m.Children)-1)
		}
	}
	walk(n, "", "", 0, true)
	return out
}

// Dominant returns the leaf component whose failures cost the system the most
// (largest IfPerfect): the first place to spend reliability effort.
func (n *Node) Dominant() Impact {
	var best Impact
	for _, imp := range n.Impacts() {
		if imp.Node.Kind == KindComponent && (best.Node == nil || imp.IfPerfect > best.IfPerfect) {
			best = imp
		}
	}
	return best
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return strings.Join([]string{path, name}, "/")
}
