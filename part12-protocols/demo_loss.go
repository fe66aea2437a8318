package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sysdesign-masterclass/golang/part12-protocols/h3"
)

// lossDemo runs HTTP/2 and HTTP/3 side by side, without and with loss.
func lossDemo(ctx context.Context, w io.Writer, o options) error {
	cfg := h3.DefaultConfig
	cfg.Calls = o.lossCalls
	fmt.Fprintf(w, "== HTTP/2 vs HTTP/3 under packet loss: %d concurrent streams on one connection, %d Connect calls each, %d-byte message ==\n",
		cfg.Streams, cfg.Calls, cfg.MessageBytes)
	fmt.Fprintf(w, "loss injected by proxies on loopback, each way: UDP datagrams dropped (quic-go recovers them) or delivered %s late;\n", cfg.Stall)
	fmt.Fprintf(w, "TCP modelled: a lost %d-byte segment arrives %s late and every byte behind it on the connection waits\n", h3.Segment, cfg.Stall)
	tw := table(w)
	fmt.Fprintf(tw, "transport\tloss\tpackets lost\tconnections\tcalls\terrors\tcalls ≥ %s\tp50\tp99\tmax\n", cfg.Stall)
	for _, loss := range []float64{0, cfg.Loss} {
		for _, tr := range h3.Transports {
			if loss == 0 && tr == "HTTP/3, delayed" {
				continue // the same as dropped without loss
			}
			c := cfg
			c.Loss = loss
			row, err := h3.Run(ctx, tr, c)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%g%%\t%d of %d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", row.Transport, 100*loss, row.Lost, row.Packets, row.Conns,
				row.Calls, row.Errors, row.Slow, ms(row.P50), ms(row.P99), ms(row.Max))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "calls ≥ %s: the calls a lost packet held up. HTTP/2: a lost segment holds up every stream with bytes behind it;\n", cfg.Stall)
	fmt.Fprintln(w, "HTTP/3: only the streams with frames in the lost packet (a QUIC packet can carry several). One run on a shared")
	fmt.Fprintln(w, "machine (scheduling noise adds slow calls); BenchmarkLoss repeats it: bench/results/part12.txt holds the committed run.")
	fmt.Fprintln(w)
	return nil
}
