package reshard

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/sysdesign-masterclass/golang/part04-sharding/shard"
)

// Spec is a router as the routing table stores it, in JSON:
// {"kind":"jump","shards":3} or {"kind":"range","lower":[1,1000],"end":9223372036854775807}.
type Spec struct {
	Kind   string  `json:"kind"`             // jump | modulo | keyrange | range
	Shards int     `json:"shards,omitempty"` // jump, modulo, keyrange
	Lower  []int64 `json:"lower,omitempty"`  // range: the shards' first ids
	End    int64   `json:"end,omitempty"`    // range: the last id, included
}

// MaxShards bounds a spec's shard count.
const MaxShards = 1024

// ParseSpec decodes and checks a routing table's spec.
func ParseSpec(s string) (Spec, error) {
	var sp Spec
	if err := json.Unmarshal([]byte(s), &sp); err != nil {
		return Spec{}, fmt.Errorf("reshard: routing spec %.80q: %w", s, err)
	}
	if _, err := sp.Router(); err != nil {
		return Spec{}, err
	}
	return sp, nil
}

// String is the spec's JSON.
func (s Spec) String() string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Router returns the router the spec describes.
func (s Spec) Router() (shard.Router, error) {
	switch s.Kind {
	case "jump", "modulo", "keyrange":
		if s.Shards < 1 || s.Shards > MaxShards || s.Lower != nil || s.End != 0 {
			return nil, fmt.Errorf("reshard: spec %s: want 1..%d shards and no range bounds", s, MaxShards)
		}
		switch s.Kind {
		case "jump":
			return shard.Jump{N: s.Shards}, nil
		case "modulo":
			return shard.Modulo{N: s.Shards}, nil
		}
		return shard.NewKeyRange(s.Shards), nil
	case "range":
		if s.Shards != 0 || len(s.Lower) > MaxShards {
			return nil, fmt.Errorf("reshard: spec %s: a range spec has lower bounds (at most %d), not shards", s, MaxShards)
		}
		return shard.NewRange(s.Lower, s.End)
	}
	return nil, errors.New("reshard: spec " + s.String() + `: kind must be jump, modulo, keyrange or range`)
}

// JumpSpec is {"kind":"jump","shards":n}.
func JumpSpec(n int) Spec { return Spec{Kind: "jump", Shards: n} }

// OpenRangeSpec is a range spec whose last shard takes every larger id.
func OpenRangeSpec(lower ...int64) Spec { return Spec{Kind: "range", Lower: lower, End: math.MaxInt64} }
