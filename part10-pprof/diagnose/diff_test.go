package diagnose

import (
	"testing"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInGoDistribution(t *testing.T) {
	for fn, std := range map[string]bool{
		"runtime.gopark":                         true,
		"runtime.goexit":                         true,
		"strings.(*Builder).WriteString":         true,
		"net/http.(*conn).serve":                 true,
		"internal/bytealg.MakeNoZero":            true,
		"main.main":                              false,
		"main.leak.func1":                        false,
		"github.com/acme/svc.(*S).handle":        false,
		"golang.org/x/sync/errgroup.(*Group).Go": false,
		"example.com/m.F":                        false,
		"slices.SortFunc[go.shape.[]github.com/acme/svc.T,go.shape.func(github.com/acme/svc.T, github.com/acme/svc.T) int]": true,
		"github.com/acme/svc.Map[go.shape.string]": false,
		"": false,
	} {
		assert.Equal(t, std, InGoDistribution(fn), fn)
	}
}

// synth builds a profile of kind k whose samples have the given stacks
// (innermost first) and values.
func synth(k Kind, samples map[string]int64, stacks map[string][]string) *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: k.SampleType, Unit: k.Unit}},
		PeriodType: &profile.ValueType{Type: k.SampleType, Unit: k.Unit},
	}
	funcs := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	for key, v := range samples {
		var ls []*profile.Location
		for _, name := range stacks[key] {
			l := locs[name]
			if l == nil {
				f := &profile.Function{ID: uint64(len(funcs) + 1), Name: name}
				funcs[name] = f
				p.Function = append(p.Function, f)
				l = &profile.Location{ID: uint64(len(locs) + 1), Line: []profile.Line{{Function: f}}}
				locs[name] = l
				p.Location = append(p.Location, l)
			}
			ls = append(ls, l)
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: ls, Value: []int64{v}})
	}
	return p
}

var stacks = map[string][]string{
	"leak":     {"strings.(*Builder).WriteString", "example.com/svc.(*S).audit", "example.com/svc.(*S).ServeHTTP", "net/http.serverHandler.ServeHTTP"},
	"churn":    {"encoding/json.Marshal", "example.com/svc.(*S).render", "net/http.serverHandler.ServeHTTP"},
	"conn":     {"bufio.NewReaderSize", "net/http.(*conn).serve"},
	"stuck":    {"runtime.gopark", "runtime.chansend", "runtime.chansend1", "example.com/svc.backend", "example.com/svc.(*S).lookup.func1", "runtime.goexit"},
	"idle":     {"runtime.gopark", "runtime.netpollblock", "net.(*conn).Read", "net/http.(*conn).serve", "runtime.goexit"},
	"reporter": {"runtime.gopark", "time.Sleep", "example.com/svc.report", "runtime.goexit"},
}

func TestDiffGroupsByTheCodeToFix(t *testing.T) {
	base := synth(Heap, map[string]int64{"leak": 1 << 20, "churn": 8 << 20, "conn": 4096}, stacks)
	peak := synth(Heap, map[string]int64{"leak": 50 << 20, "churn": 8 << 20, "conn": 3 << 20}, stacks)
	f, err := Diff(base, peak, Heap, Options{})
	require.NoError(t, err)
	require.Len(t, f, 2, "churn did not grow")
	assert.Equal(t, Finding{
		Func: "example.com/svc.(*S).audit", Leaf: "strings.(*Builder).WriteString",
		Growth: 49 << 20, Unit: "bytes", Stack: stacks["leak"],
	}, f[0])
	assert.Equal(t, "bufio.NewReaderSize", f[1].Func, "no frame of its own: the leaf")
	assert.Equal(t, int64(3<<20-4096), f[1].Growth)

	f, err = Diff(base, peak, Heap, Options{MinGrowth: 4 << 20})
	require.NoError(t, err)
	assert.Len(t, f, 1, "MinGrowth")

	own := func(fn string) bool { return fn == "net/http.(*conn).serve" }
	f, err = Diff(base, peak, Heap, Options{Own: own})
	require.NoError(t, err)
	assert.Equal(t, "net/http.(*conn).serve", f[1].Func, "Own decides what counts as the caller's code")
}

func TestDiffNamesWhereGoroutinesStartedAndWhereTheyWait(t *testing.T) {
	base := synth(Goroutines, map[string]int64{"idle": 2, "reporter": 1}, stacks)
	peak := synth(Goroutines, map[string]int64{"idle": 30, "reporter": 1, "stuck": 100}, stacks)
	f, err := Diff(base, peak, Goroutines, Options{})
	require.NoError(t, err)
	require.Len(t, f, 2)
	assert.Equal(t, "example.com/svc.(*S).lookup.func1", f[0].Func, "the goroutine's own outermost frame: where it was started")
	assert.Equal(t, "runtime.chansend1", f[0].Leaf, "the call it waits in, just inside its own code")
	assert.Equal(t, int64(100), f[0].Growth)
	assert.Equal(t, "net/http.(*conn).serve", f[1].Func, "no frame of its own: its entry")
	assert.Equal(t, int64(28), f[1].Growth)
	assert.Equal(t, "count", f[1].Unit)
}

// Shrinking is not a finding, and neither is a function that only moved.
func TestDiffIgnoresWhatShrank(t *testing.T) {
	base := synth(Goroutines, map[string]int64{"stuck": 100, "idle": 50}, stacks)
	peak := synth(Goroutines, map[string]int64{"stuck": 100, "idle": 3}, stacks)
	f, err := Diff(base, peak, Goroutines, Options{MinGrowth: 1})
	require.NoError(t, err)
	assert.Empty(t, f)
	assert.Equal(t, int64(150), Total(base, Goroutines))
	assert.Equal(t, int64(0), Total(base, Heap), "no such sample type")
}
