package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

// stampedeDemo is the hot-key experiment: backend calls and Redis commands per
// defence, for the same burst at the same expiry.
func stampedeDemo(ctx context.Context, w io.Writer, c *config) error {
	var progress func(string)
	if isTerminal(os.Stderr) {
		progress = func(name string) { fmt.Fprintf(os.Stderr, "\r\033[K  running %s...", name) }
		defer fmt.Fprint(os.Stderr, "\r\033[K")
	}
	rows, err := c.env.RunStampede(ctx, c.st, progress)
	if err != nil {
		return err
	}
	st := c.st
	if st.Trickle < 0 {
		st.Trickle = 0
	}
	fmt.Fprintf(w, "%d requests spread over the %v TTL, then %d at once at expiry; backend takes %v (δ), β=%g; every row keeps the value in Redis for the TTL\n",
		st.Trickle, st.TTL, st.Burst, st.BackendLatency, st.Beta)
	t := table(w)
	fmt.Fprintln(t, "strategy\trequests\tbackend calls\tRedis commands\tburst p50\tburst p99\terrors\t")
	for _, r := range rows {
		fmt.Fprintf(t, "%s\t%d\t%d\t%d\t%s\t%s\t%d\t\n", r.Name, r.Requests, r.BackendCalls, r.RedisCommands, ms(r.BurstP50), ms(r.BurstP99), r.Errors)
	}
	return t.Flush()
}

// isTerminal reports whether f is a terminal (progress lines are for people, not for
// pipes and logs).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
