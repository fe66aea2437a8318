package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// demo is a table of three modes that record what ran; "slow" fails when o is "fail".
func demo(ran *[]string) Modes[string] {
	mode := func(name string) Mode[string] {
		return Mode[string]{Name: name, About: "what " + name + " shows", Run: func(_ context.Context, w io.Writer, o string) error {
			*ran = append(*ran, name)
			if name == "slow" && o == "fail" {
				return errors.New("the backend died")
			}
			fmt.Fprintln(w, name)
			return nil
		}}
	}
	return Modes[string]{mode("tradeoff"), mode("slow"), mode("availability")}
}

func TestModesNamesHelpCheck(t *testing.T) {
	ms := demo(new([]string))
	assert.Equal(t, []string{"tradeoff", "slow", "availability"}, ms.Names())
	assert.Equal(t, "all | tradeoff | slow | availability", ms.Help())
	for _, ok := range []string{"all", "tradeoff", "availability"} {
		assert.NoError(t, ms.Check(ok), ok)
	}
	for _, bad := range []string{"", "bogus", "All", "slow "} {
		assert.EqualError(t, ms.Check(bad), fmt.Sprintf("unknown -mode %q; want all | tradeoff | slow | availability", bad))
	}
}

func TestModesRun(t *testing.T) {
	for _, tt := range []struct {
		mode, o string
		ran     []string
		out     string
		err     string
	}{
		{"all", "", []string{"tradeoff", "slow", "availability"}, "tradeoff\nslow\navailability\n", ""},
		{"slow", "", []string{"slow"}, "slow\n", ""},
		{"all", "fail", []string{"tradeoff", "slow"}, "tradeoff\n", "slow: the backend died"},
		{"bogus", "", nil, "", `unknown -mode "bogus"; want all | tradeoff | slow | availability`},
	} {
		t.Run(tt.mode+" "+tt.o, func(t *testing.T) {
			var ran []string
			var out strings.Builder
			err := demo(&ran).Run(t.Context(), &out, tt.mode, tt.o)
			if tt.err == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tt.err)
			}
			assert.Equal(t, tt.ran, ran, "modes run, in order; none after a failure")
			assert.Equal(t, tt.out, out.String())
		})
	}
}

func TestModesRunWrapsTheModesError(t *testing.T) {
	ms := Modes[int]{{Name: "a", Run: func(ctx context.Context, _ io.Writer, _ int) error { return ctx.Err() }}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.ErrorIs(t, ms.Run(ctx, io.Discard, "all", 0), context.Canceled)
}

func TestModesWriteUsage(t *testing.T) {
	var b strings.Builder
	demo(new([]string)).WriteUsage(&b)
	assert.Equal(t, "\nmodes:\n"+
		"  tradeoff      what tradeoff shows\n"+
		"  slow          what slow shows\n"+
		"  availability  what availability shows\n", b.String())
}
