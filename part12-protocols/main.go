// Command part12-protocols is the runnable companion to Part 12 of the System
// Design Masterclass: one ping service called over gRPC (grpc-go), Connect,
// gRPC and gRPC-Web (connect-go, one port), REST JSON, HTTP/3 and GraphQL,
// with the bytes and times of each; the Protobuf wire format walked byte by
// byte; JSON against Protobuf serialization measured beside the article's
// table; GraphQL's cost limit and DataLoader; HTTP/2 against HTTP/3 under
// packet loss.
//
//	go run ./part12-protocols                                 # every experiment
//	go run ./part12-protocols -mode wire                      # one experiment
//	go run ./part12-protocols serve -addr 127.0.0.1:8080      # the servers, until Ctrl-C
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sysdesign-masterclass/golang/internal/cli"
)

// modes lists the experiments in the order "all" runs them: the article's.
var modes = cli.Modes[options]{
	{Name: "serialization", About: "the article's JSON vs Protobuf table measured on a stated message: ops/s, B/op, allocs, payload bytes", Run: serializationDemo},
	{Name: "wire", About: "the wire format: varints 3 and 300, a PingResponse and a Transaction walked field by field", Run: wireDemo},
	{Name: "graphql", About: "the article's cost formula and its 10,000-cost query refused at 500; N+1 vs DataLoader, statements counted", Run: graphqlDemo},
	{Name: "loss", About: "HTTP/2 (one TCP connection) vs HTTP/3 (QUIC) for concurrent streams under 2% packet loss: p50, p99, max", Run: lossDemo},
	{Name: "protocols", About: "one Ping over every protocol on loopback: body and wire bytes per call, median and p99 round trip", Run: protocolsDemo},
}

// options are the parsed flags.
type options struct {
	mode, addr, grpcAddr string
	calls, lossCalls     int
}

func main() { cli.Main("part12-protocols", run) }

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return cli.ParseFailed(w, err, usageText())
	}
	if o.addr != "" {
		return serve(ctx, w, o)
	}
	return modes.Run(ctx, w, o.mode, o)
}

// flags declares the experiments' command line on a fresh FlagSet.
func flags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("part12-protocols")
	fs.StringVar(&o.mode, "mode", "all", "experiment: "+modes.Help())
	fs.IntVar(&o.calls, "calls", 2000, "calls per protocol in -mode protocols (10..1000000)")
	fs.IntVar(&o.lossCalls, "loss-calls", 50, "calls per stream (16 streams) per transport in -mode loss (1..10000)")
	return fs
}

// serveFlags declares `serve`'s command line.
func serveFlags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("serve")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "Connect, gRPC, gRPC-Web, REST and GraphQL on TCP (h2c), HTTP/3 on UDP, same port")
	fs.StringVar(&o.grpcAddr, "grpc-addr", "127.0.0.1:8081", "grpc-go's server (health and reflection included)")
	return fs
}

// parse reads args into options and checks every value before anything runs.
func parse(args []string) (options, error) {
	var o options
	if len(args) > 0 && args[0] == "serve" {
		fs := serveFlags(&o)
		if err := fs.Parse(args[1:]); err != nil {
			return o, err
		}
		switch {
		case fs.NArg() > 0:
			return o, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
		case o.addr == "":
			return o, errors.New("serve: -addr is empty")
		case o.grpcAddr == "":
			return o, errors.New("serve: -grpc-addr is empty")
		}
		return o, nil
	}
	fs := flags(&o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (the only subcommand is serve, and it comes first)", fs.Arg(0))
	}
	return o, cmp.Or( // the first of these that fails
		modes.Check(o.mode),
		cli.InRange("calls", o.calls, 10, 1_000_000),
		cli.InRange("loss-calls", o.lossCalls, 1, 10_000),
	)
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part12-protocols [-mode M] [-calls N] [-loss-calls N]\n")
	b.WriteString("       go run ./part12-protocols serve [-addr HOST:PORT] [-grpc-addr HOST:PORT]\n")
	modes.WriteUsage(&b)
	cli.WriteFlags(&b, "flags", flags(new(options)))
	cli.WriteFlags(&b, "serve flags", serveFlags(new(options)))
	return b.String()
}
