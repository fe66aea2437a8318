package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Mode is one thing a chapter's demo can run: -mode Name runs it alone, -mode
// all runs every mode in its table's order. O is what the chapter hands each
// mode: its parsed flags, and whatever run opened for the modes to share.
type Mode[O any] struct {
	Name  string // the -mode value
	About string // one line on what it shows, for the -h list
	Run   func(ctx context.Context, w io.Writer, o O) error
}

// Modes is a chapter's table of modes, in the order "all" runs them.
type Modes[O any] []Mode[O]

// Names returns the modes' names in order.
func (ms Modes[O]) Names() []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
}

// Help returns the values -mode takes, "all | a | b", for the flag's help.
func (ms Modes[O]) Help() string {
	return strings.Join(append([]string{"all"}, ms.Names()...), " | ")
}

// Check returns nil if mode is "all" or a mode's name, else the usage error's
// message: unknown -mode "x"; want all | a | b.
func (ms Modes[O]) Check(mode string) error {
	return OneOf("mode", mode, append([]string{"all"}, ms.Names()...)...)
}

// Run runs the mode named mode, or every mode in order for "all", and stops at
// the first error, prefixed with the mode's name.
func (ms Modes[O]) Run(ctx context.Context, w io.Writer, mode string, o O) error {
	if err := ms.Check(mode); err != nil {
		return err
	}
	for _, m := range ms {
		if mode == "all" || mode == m.Name {
			if err := m.Run(ctx, w, o); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
		}
	}
	return nil
}

// WriteUsage writes the usage text's "modes:" section, after a blank line:
// each name, padded to the longest, and what it shows.
func (ms Modes[O]) WriteUsage(w io.Writer) {
	width := 0
	for _, m := range ms {
		width = max(width, len(m.Name))
	}
	fmt.Fprint(w, "\nmodes:\n")
	for _, m := range ms {
		fmt.Fprintf(w, "  %-*s  %s\n", width, m.Name, m.About)
	}
}
