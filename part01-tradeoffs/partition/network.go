package partition

import "fmt"

// network is who can talk to whom: network[i] is the group of replica i+1, and
// replicas in the same group reach each other. All zero means healed.
type network []int

// split puts the replicas in g1 in group 1 and every other replica in group 0,
// replacing any earlier split. Both groups must be non-empty.
func (n network) split(g1 []int) error {
	next := make(network, len(n))
	cut := 0
	for _, r := range g1 {
		if err := n.check(r); err != nil {
			return err
		}
		if next[r-1] == 0 {
			next[r-1], cut = 1, cut+1
		}
	}
	if cut == 0 || cut == len(n) {
		return fmt.Errorf("partition of %v leaves one side of %d replicas empty", g1, len(n))
	}
	copy(n, next)
	return nil
}

func (n network) heal() { clear(n) }

func (n network) partitioned() bool {
	for _, g := range n {
		if g != 0 {
			return true
		}
	}
	return false
}

// reach lists the indexes of the replicas on replica r's side, r included.
func (n network) reach(r int) ([]int, error) {
	if err := n.check(r); err != nil {
		return nil, err
	}
	var out []int
	for i, g := range n {
		if g == n[r-1] {
			out = append(out, i)
		}
	}
	return out, nil
}

func (n network) check(r int) error {
	if r < 1 || r > len(n) {
		return fmt.Errorf("replica %d of %d: %w", r, len(n), ErrUnknownReplica)
	}
	return nil
}
