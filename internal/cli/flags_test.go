package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewFlagSetPrintsNothing(t *testing.T) {
	fs := NewFlagSet("demo")
	n := fs.Int("n", 10, "how many (1..100)")
	assert.ErrorIs(t, fs.Parse([]string{"-h"}), flag.ErrHelp)
	assert.EqualError(t, fs.Parse([]string{"-bogus"}), "flag provided but not defined: -bogus")
	require.NoError(t, fs.Parse([]string{"-n", "3", "stray"}))
	assert.Equal(t, 3, *n)
	assert.Equal(t, []string{"stray"}, fs.Args())
	var b strings.Builder
	fs.SetOutput(&b)
	fs.Usage()
	assert.Empty(t, b.String(), "Usage prints nothing: run prints the usage itself")
}

func TestWriteFlags(t *testing.T) {
	fs := NewFlagSet("demo")
	fs.Int("n", 10, "how many (1..100)")
	fs.String("store", "auto", "where: auto | memory")
	var b strings.Builder
	b.WriteString("usage: demo [-n N] [-store S]\n")
	WriteFlags(&b, "flags", fs)
	assert.Equal(t, "usage: demo [-n N] [-store S]\n\nflags:\n"+
		"  -n int\n    \thow many (1..100) (default 10)\n"+
		"  -store string\n    \twhere: auto | memory (default \"auto\")\n", b.String())
	var again strings.Builder
	fs.SetOutput(&again)
	WriteFlags(&b, "serve flags", fs)
	fs.PrintDefaults()
	assert.NotEmpty(t, again.String(), "WriteFlags puts the FlagSet's own output back")
}

func TestParseFailed(t *testing.T) {
	const usage = "usage: demo [-n N]\n"
	var w bytes.Buffer
	assert.NoError(t, ParseFailed(&w, nil, usage))
	assert.Empty(t, w.String())

	err := ParseFailed(&w, flag.ErrHelp, usage)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, usage, w.String(), "-h: the usage on w (stdout)")
	assert.Equal(t, 0, Exit("demo", err, new(bytes.Buffer)))

	w.Reset()
	err = ParseFailed(&w, errors.New("-n 0 is out of range 1..100"), usage)
	assert.Empty(t, w.String(), "a mistake prints nothing on w")
	var stderr bytes.Buffer
	assert.Equal(t, 2, Exit("demo", err, &stderr))
	assert.Equal(t, "demo: -n 0 is out of range 1..100\n\n"+usage, stderr.String())
}

func TestOneOf(t *testing.T) {
	assert.NoError(t, OneOf("store", "memory", "auto", "memory", "redis"))
	assert.EqualError(t, OneOf("store", "mongo", "auto", "memory", "redis"), `unknown -store "mongo"; want auto | memory | redis`)
	assert.EqualError(t, OneOf("stack", "", "auto", "off"), `unknown -stack ""; want auto | off`)
}

func TestInRange(t *testing.T) {
	for _, v := range []int{1, 50, 100} {
		assert.NoError(t, InRange("requests", v, 1, 100), v)
	}
	assert.EqualError(t, InRange("requests", 0, 1, 100), "-requests 0 is out of range 1..100")
	assert.EqualError(t, InRange("requests", 101, 1, 100), "-requests 101 is out of range 1..100")
	assert.EqualError(t, InRange("trusted-hops", -1, 0, 32), "-trusted-hops -1 is out of range 0..32")
}
