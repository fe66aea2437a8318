package diagnose

import (
	"bytes"
	"compress/gzip"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// live writes this process's profile name, in the format the endpoints
// serve (debug 0: gzipped protobuf) or as text (debug 1).
func live(t testing.TB, name string, debug int) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, pprof.Lookup(name).WriteTo(&b, debug))
	return b.Bytes()
}

func cpuProfile(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, pprof.StartCPUProfile(&b))
	time.Sleep(20 * time.Millisecond)
	pprof.StopCPUProfile()
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return out.Bytes()
}

// Bad input gets an error that says what it is and what to do.
func TestParseRejectsWhatIsNotAProfileOfItsKind(t *testing.T) {
	heap := live(t, "heap", 0)
	for _, tt := range []struct {
		name string
		data []byte
		kind Kind
		msg  string
	}{
		{"empty", nil, Heap, "heap profile: empty input"},
		{"truncated", heap[:len(heap)/2], Heap, "heap profile: truncated ("},
		{"cut after the gzip header", heap[:12], Heap, "heap profile: truncated ("},
		{"an HTML page", []byte("<!doctype html><title>Login</title>"), Heap, `heap profile: does not start with gzip's magic bytes (got "<!doctype html><"): not a usable profile; fetch /debug/pprof/heap without ?debug`},
		{"the debug=1 text", live(t, "heap", 1), Heap, "does not start with gzip's magic bytes (got \"heap profile: "},
		{"a debug=2 goroutine dump", live(t, "goroutine", 2), Goroutines, `goroutine profile: does not start with gzip's magic bytes (got "goroutine `},
		{"gzipped garbage", gz([]byte("not a protobuf at all, just words")), Heap, "heap profile: parsing profile:"},
		{"a CPU profile as heap", cpuProfile(t), Heap, "heap profile: it holds samples/count, cpu/nanoseconds, not inuse_space (a CPU profile?)"},
		{"a goroutine profile as heap", live(t, "goroutine", 0), Heap, "heap profile: it holds goroutine/count, not inuse_space (a goroutine profile?)"},
		{"a heap profile as goroutines", heap, Goroutines, "goroutine profile: it holds alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes, not goroutine (a heap or allocs profile?)"},
		{"a block profile as goroutines", live(t, "block", 0), Goroutines, "(a block or mutex profile?)"},
		{"over the limit", append([]byte{0x1f, 0x8b}, make([]byte, MaxProfileBytes)...), Heap, "heap profile: 67108866 bytes, over the 67108864-byte limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.data, tt.kind)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, ErrNotProfile)
			assert.ErrorContains(t, err, tt.msg)
		})
	}
	p, err := Parse(heap, Heap)
	require.NoError(t, err)
	assert.NotEmpty(t, p.SampleType)
}

// Diff refuses profiles of the wrong kind rather than comparing columns that
// mean different things.
func TestDiffRefusesMismatchedProfiles(t *testing.T) {
	h, err := profile.ParseData(live(t, "heap", 0))
	require.NoError(t, err)
	g, err := profile.ParseData(live(t, "goroutine", 0))
	require.NoError(t, err)
	_, err = Diff(h, g, Heap, Options{})
	assert.ErrorIs(t, err, ErrNotProfile)
	assert.ErrorContains(t, err, "diff: want two heap profiles, have alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes and goroutine/count")
	_, err = Diff(nil, g, Goroutines, Options{})
	assert.ErrorContains(t, err, "diff: a profile is missing")
	f, err := Diff(h, h, Heap, Options{MinGrowth: 1})
	require.NoError(t, err)
	assert.Empty(t, f, "a profile minus itself")
}

// FuzzParse feeds Parse anything, starting from real profiles of this
// process and their truncations: it returns a profile of the kind asked for
// or an error wrapping ErrNotProfile, never panics, and a profile it accepts
// diffs against itself to nothing.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"heap", "goroutine", "block", "mutex", "allocs"} {
		b := live(f, name, 0)
		f.Add(b, name == "goroutine")
		f.Add(b[:len(b)*3/4], name == "goroutine")
	}
	f.Add(cpuProfile(f), false)
	f.Add(live(f, "goroutine", 1), true)
	f.Add([]byte{0x1f, 0x8b}, false)
	f.Add(gz([]byte{0x0a, 0x02, 0x08, 0x01}), false)
	f.Fuzz(func(t *testing.T, data []byte, goroutines bool) {
		k := Heap
		if goroutines {
			k = Goroutines
		}
		p, err := Parse(data, k)
		if err != nil {
			assert.ErrorIs(t, err, ErrNotProfile)
			assert.Nil(t, p)
			return
		}
		findings, err := Diff(p, p, k, Options{MinGrowth: 1})
		if assert.NoError(t, err) {
			assert.Empty(t, findings)
		}
	})
}
