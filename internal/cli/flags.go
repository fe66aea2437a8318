package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// NewFlagSet returns an empty FlagSet that prints nothing: Parse returns its
// errors (and flag.ErrHelp for -h), and run reports them with the usage itself.
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// WriteFlags writes a usage text's flags section, after a blank line: heading
// ("flags", "serve flags") and every flag of fs with its help and default.
func WriteFlags(w io.Writer, heading string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "\n%s:\n", heading)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// ParseFailed is run's answer when parsing its command line returned err: for
// -h (flag.ErrHelp) it prints usage on w and returns err, which exits 0; any
// other err becomes a *UsageError that prints usage after the message and
// exits 2. A nil err stays nil.
func ParseFailed(w io.Writer, err error, usage string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(w, usage)
		return err
	default:
		return &UsageError{Err: err, Usage: usage}
	}
}

// OneOf returns nil if value is one of want, else the message for a flag that
// takes one of a few words: unknown -name "x"; want a | b | c.
func OneOf(name, value string, want ...string) error {
	if slices.Contains(want, value) {
		return nil
	}
	return fmt.Errorf("unknown -%s %q; want %s", name, value, strings.Join(want, " | "))
}

// InRange returns nil if lo <= v <= hi, else the message for an integer flag
// out of its bounds: -name 0 is out of range 1..100.
func InRange(name string, v, lo, hi int) error {
	if lo <= v && v <= hi {
		return nil
	}
	return fmt.Errorf("-%s %d is out of range %d..%d", name, v, lo, hi)
}
