package diagnose

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// Kind is a profile the diff understands: its endpoint and the sample type
// whose growth it ranks.
type Kind struct {
	Name       string // the profile's name under /debug/pprof/
	SampleType string // the value compared: inuse_space, goroutine
	Unit       string // the sample type's unit: bytes, count
	Query      string // added to the endpoint's URL
}

var (
	// Heap compares live bytes (inuse_space) of two heap profiles taken
	// right after a GC.
	Heap = Kind{Name: "heap", SampleType: "inuse_space", Unit: "bytes", Query: "?gc=1"}
	// Allocs compares bytes allocated (alloc_space), freed or not: where the
	// garbage comes from, not what stays.
	Allocs = Kind{Name: "heap", SampleType: "alloc_space", Unit: "bytes", Query: "?gc=1"}
	// Goroutines compares goroutine counts per stack.
	Goroutines = Kind{Name: "goroutine", SampleType: "goroutine", Unit: "count"}
)

// MaxProfileBytes bounds what Fetch reads and Parse accepts: a goroutine
// profile of a million goroutines with distinct stacks is well under it.
const MaxProfileBytes = 64 << 20

// ErrNotProfile is wrapped by Parse's errors for input that is not a profile
// of the kind asked for.
var ErrNotProfile = errors.New("not a usable profile")

// Parse decodes a profile in pprof's format (gzip-compressed protobuf, as the
// /debug/pprof endpoints serve it) and checks that it is of kind k.
func Parse(data []byte, k Kind) (*profile.Profile, error) {
	switch {
	case len(data) == 0:
		return nil, fmt.Errorf("%s profile: empty input: %w", k.Name, ErrNotProfile)
	case len(data) > MaxProfileBytes:
		return nil, fmt.Errorf("%s profile: %d bytes, over the %d-byte limit: %w", k.Name, len(data), MaxProfileBytes, ErrNotProfile)
	case len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b:
	default:
		// Not gzip. pprof's parser would try its legacy text formats; the
		// endpoints never serve those unless asked with ?debug=1, and a
		// person who pasted an HTML page or a debug=2 dump here wants to
		// hear so.
		return nil, fmt.Errorf("%s profile: does not start with gzip's magic bytes (got %q): %w; fetch /debug/pprof/%s without ?debug", k.Name, head(data), ErrNotProfile, k.Name)
	}
	p, err := profile.ParseData(data)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected EOF") {
			return nil, fmt.Errorf("%s profile: truncated (%d bytes; the gzip stream ends early): %w", k.Name, len(data), ErrNotProfile)
		}
		return nil, fmt.Errorf("%s profile: %v: %w", k.Name, err, ErrNotProfile)
	}
	if sampleIndex(p, k) < 0 {
		return nil, fmt.Errorf("%s profile: it holds %s, not %s (a %s profile?): %w", k.Name, types(p), k.SampleType, guess(p), ErrNotProfile)
	}
	return p, nil
}

func head(b []byte) string {
	if len(b) > 16 {
		b = b[:16]
	}
	return string(b)
}

func types(p *profile.Profile) string {
	var s []string
	for _, t := range p.SampleType {
		s = append(s, t.Type+"/"+t.Unit)
	}
	if len(s) == 0 {
		return "no sample types"
	}
	return strings.Join(s, ", ")
}

// guess names the kind of profile p looks like, for an error message.
func guess(p *profile.Profile) string {
	for _, t := range p.SampleType {
		switch t.Type {
		case "inuse_space", "alloc_space":
			return "heap or allocs"
		case "cpu":
			return "CPU"
		case "goroutine":
			return "goroutine"
		case "contentions", "delay":
			return "block or mutex"
		case "threadcreate":
			return "threadcreate"
		}
	}
	return "different"
}

func sampleIndex(p *profile.Profile, k Kind) int {
	for i, t := range p.SampleType {
		if t.Type == k.SampleType && t.Unit == k.Unit {
			return i
		}
	}
	return -1
}

// Fetch GETs baseURL/debug/pprof/<kind> and parses it.
func Fetch(ctx context.Context, c *http.Client, baseURL string, k Kind) (*profile.Profile, error) {
	url := strings.TrimSuffix(baseURL, "/") + "/debug/pprof/" + k.Name + k.Query
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s profile: %w", k.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxProfileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s profile: %w", k.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s profile: %s: %s", k.Name, resp.Status, bytes.TrimSpace(data[:min(len(data), 200)]))
	}
	return Parse(data, k)
}

// Finding is one function whose samples grew from the baseline to the peak.
type Finding struct {
	// Func is the code to fix. Heap: the innermost frame outside the Go
	// distribution (the function that allocated, or called the standard
	// library function that did). Goroutines: the outermost such frame (the
	// function the goroutine was started with). If a stack has no such frame:
	// its leaf (heap) or the function the goroutine started in.
	Func string
	// Leaf is, for the heap, the innermost frame of the largest stack: what
	// pprof's flat `top` shows. For goroutines it is the call the goroutine is
	// blocked in, the frame just inside the innermost frame of its own code
	// (runtime.chansend1: a channel send).
	Leaf   string
	Growth int64    // peak − baseline, in Unit
	Unit   string   // bytes or count
	Stack  []string // the largest contributing stack, innermost first
}

// Options tune Diff.
type Options struct {
	// MinGrowth is the growth below which a function is not reported: noise
	// from sampling and from work in flight. The heap profile records about
	// one allocation per runtime.MemProfileRate bytes (512 KiB) and scales it
	// up, so one stray object can weigh 512 KiB. Zero means four sampling
	// periods for bytes (2 MiB at the default rate; the period is in the
	// profile) and 10 for counts.
	MinGrowth int64
	// Own reports whether a function is code to fix, as opposed to the
	// runtime's or the standard library's. Nil means InGoDistribution's
	// negation.
	Own func(fn string) bool
}

// InGoDistribution reports whether fn, a fully qualified function name as
// profiles record it, belongs to the Go distribution (runtime, the standard
// library): the first element of its package path has no dot and is not
// "main".
func InGoDistribution(fn string) bool {
	if i := strings.IndexByte(fn, '['); i >= 0 {
		fn = fn[:i] // type arguments name other packages
	}
	if i := strings.IndexByte(fn, '/'); i >= 0 {
		return !strings.Contains(fn[:i], ".")
	}
	pkg, _, _ := strings.Cut(fn, ".")
	return pkg != "main" && pkg != ""
}

// Diff subtracts base from peak (both of kind k) and returns the functions
// whose samples grew by at least opt.MinGrowth, largest first.
func Diff(base, peak *profile.Profile, k Kind, opt Options) ([]Finding, error) {
	if base == nil || peak == nil {
		return nil, errors.New("diff: a profile is missing")
	}
	if sampleIndex(base, k) < 0 || sampleIndex(peak, k) < 0 {
		return nil, fmt.Errorf("diff: want two %s profiles, have %s and %s: %w", k.Name, types(base), types(peak), ErrNotProfile)
	}
	neg := base.Copy()
	neg.Scale(-1)
	merged, err := profile.Merge([]*profile.Profile{neg, peak.Copy()})
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	idx := sampleIndex(merged, k)
	if opt.MinGrowth == 0 {
		opt.MinGrowth = 10
		if k.Unit == "bytes" {
			opt.MinGrowth = 4 * max(peak.Period, 512<<10)
		}
	}
	own := opt.Own
	if own == nil {
		own = func(fn string) bool { return !InGoDistribution(fn) }
	}
	type group struct {
		growth  int64
		biggest int64
		stack   []string
		leaf    string
	}
	groups := map[string]*group{}
	for _, s := range merged.Sample {
		v := s.Value[idx]
		stack := frames(s)
		if len(stack) == 0 {
			continue
		}
		fn, leaf := owner(stack, own, k)
		g := groups[fn]
		if g == nil {
			g = &group{}
			groups[fn] = g
		}
		g.growth += v
		if v > g.biggest || g.stack == nil {
			g.biggest, g.stack, g.leaf = v, stack, leaf
		}
	}
	var out []Finding
	for fn, g := range groups {
		if g.growth < opt.MinGrowth {
			continue
		}
		out = append(out, Finding{Func: fn, Leaf: g.leaf, Growth: g.growth, Unit: k.Unit, Stack: g.stack})
	}
	slices.SortFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Growth, a.Growth), cmp.Compare(a.Func, b.Func))
	})
	return out, nil
}

// frames lists a sample's function names, innermost first, inlined calls
// included.
func frames(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, ln := range loc.Line { // Line[0] is the innermost inlined call
			if ln.Function != nil {
				out = append(out, ln.Function.Name)
			}
		}
	}
	return out
}

// owner returns the stack's Func and Leaf (see Finding).
func owner(stack []string, own func(string) bool, k Kind) (fn, leaf string) {
	inner, outer := -1, -1
	for i, f := range stack {
		if own(f) {
			if inner < 0 {
				inner = i
			}
			outer = i
		}
	}
	if k.Unit == "bytes" {
		if inner < 0 {
			return stack[0], stack[0]
		}
		return stack[inner], stack[0]
	}
	if inner < 0 {
		entry := len(stack) - 1
		if stack[entry] == "runtime.goexit" && entry > 0 {
			entry--
		}
		return stack[entry], stack[0]
	}
	return stack[outer], stack[max(inner-1, 0)]
}
