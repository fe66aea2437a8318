// Command part08-saga is the runnable companion to Part 8 of the System Design
// Masterclass: the order saga as a Temporal workflow that compensates in
// reverse when a step fails, its worker and starter, the transactional outbox
// with a polling relay and a logical-replication (CDC) relay to Kafka, and the
// same order flow as a choreography of Kafka events.
//
//	go run ./part08-saga                           # every experiment
//	go run ./part08-saga -mode saga -fail reserve-inventory
//	go run ./part08-saga worker                    # a saga worker on the stack's Temporal, until Ctrl-C
//	go run ./part08-saga start -fail process-payment   # one saga through that worker
//	go run ./part08-saga relay -kind cdc           # the outbox's CDC relay to Kafka, until Ctrl-C
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sysdesign-masterclass/golang/internal/cli"
	"github.com/sysdesign-masterclass/golang/part08-saga/outbox"
	"github.com/sysdesign-masterclass/golang/part08-saga/saga"
)

// modes lists the experiments in the order "all" runs them: the article's.
var modes = cli.Modes[options]{
	{Name: "saga", About: "the order saga on Temporal: a happy path and a failing one, each step and compensation with its time", Run: sagaDemo},
	{Name: "choreography", About: "the same order flow as events between services on Kafka (or an in-process queue): each event, who emitted it", Run: choreographyDemo},
	{Name: "outbox", About: "the order and its event in one transaction; commit → Kafka latency through the polling and the CDC relay (needs PostgreSQL and Kafka)", Run: outboxDemo},
}

// options are the parsed flags.
type options struct {
	mode, engine, store string
	fail, fault         string
	events              int    // outbox: events per relay
	order               string // start: the order id
	taskQueue           string
	// relay
	kind, table, slot, aggregates, deadLetter string
	batch                                     int
	interval                                  time.Duration
}

func main() { cli.Main("part08-saga", run) }

// run is main without the process: tests call it with their own args, output
// and context. -h prints the usage to w and returns flag.ErrHelp.
func run(ctx context.Context, args []string, w io.Writer) error {
	o, sub, err := parse(args)
	if err != nil {
		return cli.ParseFailed(w, err, usageText())
	}
	switch sub {
	case "worker":
		return workerCmd(ctx, w, o)
	case "start":
		return startCmd(ctx, w, o)
	case "relay":
		return relayCmd(ctx, w, o)
	}
	return modes.Run(ctx, w, o.mode, o)
}

// flags declares the experiments' command line on a fresh FlagSet.
func flags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("part08-saga")
	fs.StringVar(&o.mode, "mode", "all", "experiment: "+modes.Help())
	fs.StringVar(&o.engine, "engine", "auto", "where sagas run: auto (the stack's Temporal if it answers, else the SDK's test environment) | temporal | testenv")
	fs.StringVar(&o.store, "store", "auto", "saga state: auto (PostgreSQL if it answers, else memory) | postgres | memory")
	fs.StringVar(&o.fail, "fail", saga.StepProcessPayment, "the failing saga's failing step: "+strings.Join(saga.Steps, " | "))
	fs.StringVar(&o.fault, "fault", "reject", "how it fails: reject (a business error, not retried) | transient (fails 5 times: the retries run out; on the dev server that waits out 1+2+4+8 s of backoff)")
	fs.IntVar(&o.events, "events", 1000, "outbox: events written through each relay (10..100000)")
	return fs
}

// subFlags declares worker's and start's command lines.
func subFlags(name string, o *options) *flag.FlagSet {
	fs := cli.NewFlagSet(name)
	fs.StringVar(&o.store, "store", "auto", "saga state: auto | postgres | memory (the worker's; start reads the journal from PostgreSQL if it answers)")
	fs.StringVar(&o.taskQueue, "task-queue", saga.TaskQueue, "Temporal task queue")
	if name == "start" {
		fs.StringVar(&o.order, "order", "", "order id (default: a new random one); starting an id again attaches to its saga")
		fs.StringVar(&o.fail, "fail", "none", "step that fails: none | "+strings.Join(saga.Steps, " | "))
		fs.StringVar(&o.fault, "fault", "reject", "reject | transient")
	}
	return fs
}

// relayFlags declares relay's command line.
func relayFlags(o *options) *flag.FlagSet {
	fs := cli.NewFlagSet("relay")
	fs.StringVar(&o.kind, "kind", "cdc", "cdc (logical replication, pgoutput) | poll (SELECT … FOR UPDATE SKIP LOCKED)")
	fs.StringVar(&o.table, "table", outbox.DefaultTable, "the outbox table, part08.<table>")
	fs.StringVar(&o.slot, "slot", "part08_outbox_slot", "cdc: the replication slot (its publication is <slot>_pub)")
	fs.StringVar(&o.aggregates, "aggregates", "order,payment", "aggregate types that have a topic (events.<type>); others are dead-lettered")
	fs.StringVar(&o.deadLetter, "dead-letter", outbox.DefaultDeadLetterTopic, "dead-letter topic")
	fs.IntVar(&o.batch, "batch", 100, "events per Kafka write (1..10000)")
	fs.DurationVar(&o.interval, "interval", 100*time.Millisecond, "poll: wait after an empty poll (1ms..1m)")
	return fs
}

// parse reads args into options and checks every value before anything runs.
// It returns the subcommand ("" for the experiments).
func parse(args []string) (options, string, error) {
	var o options
	if len(args) > 0 && args[0] == "relay" {
		fs := relayFlags(&o)
		if err := fs.Parse(args[1:]); err != nil {
			return o, "relay", err
		}
		if fs.NArg() > 0 {
			return o, "relay", fmt.Errorf("relay: unexpected argument %q", fs.Arg(0))
		}
		if o.interval < time.Millisecond || o.interval > time.Minute {
			return o, "relay", fmt.Errorf("-interval %v is out of range 1ms..1m", o.interval)
		}
		return o, "relay", cmp.Or(cli.OneOf("kind", o.kind, "cdc", "poll"), cli.InRange("batch", o.batch, 1, 10_000),
			nonEmpty("table", o.table), nonEmpty("slot", o.slot), nonEmpty("aggregates", o.aggregates), nonEmpty("dead-letter", o.deadLetter))
	}
	if len(args) > 0 && (args[0] == "worker" || args[0] == "start") {
		sub := args[0]
		fs := subFlags(sub, &o)
		if err := fs.Parse(args[1:]); err != nil {
			return o, sub, err
		}
		if fs.NArg() > 0 {
			return o, sub, fmt.Errorf("%s: unexpected argument %q", sub, fs.Arg(0))
		}
		if o.taskQueue == "" {
			return o, sub, fmt.Errorf("%s: -task-queue is empty", sub)
		}
		fail := error(nil)
		if sub == "start" {
			fail = cmp.Or(cli.OneOf("fail", o.fail, append([]string{"none"}, saga.Steps...)...), cli.OneOf("fault", o.fault, "reject", "transient"))
		}
		return o, sub, cmp.Or(fail, cli.OneOf("store", o.store, "auto", "postgres", "memory"))
	}
	fs := flags(&o)
	if err := fs.Parse(args); err != nil {
		return o, "", err
	}
	if fs.NArg() > 0 {
		return o, "", fmt.Errorf("unexpected argument %q (the subcommands are worker, start and relay, and they come first)", fs.Arg(0))
	}
	return o, "", cmp.Or( // the first of these that fails
		modes.Check(o.mode),
		cli.OneOf("engine", o.engine, "auto", "temporal", "testenv"),
		cli.OneOf("store", o.store, "auto", "postgres", "memory"),
		cli.OneOf("fail", o.fail, saga.Steps...),
		cli.OneOf("fault", o.fault, "reject", "transient"),
		cli.InRange("events", o.events, 10, 100_000),
	)
}

func nonEmpty(name, v string) error {
	if v == "" {
		return fmt.Errorf("-%s is empty", name)
	}
	return nil
}

func usageText() string {
	var b strings.Builder
	b.WriteString("usage: go run ./part08-saga [-mode M] [-engine E] [-store S] [-fail STEP] [-fault F] [-events N]\n")
	b.WriteString("       go run ./part08-saga worker [-store S] [-task-queue Q]\n")
	b.WriteString("       go run ./part08-saga start [-order ID] [-fail STEP] [-fault F] [-task-queue Q]\n")
	b.WriteString("       go run ./part08-saga relay [-kind cdc|poll] [-table T] [-slot S] [-aggregates A,B] [-batch N] [-interval D]\n")
	modes.WriteUsage(&b)
	cli.WriteFlags(&b, "flags", flags(new(options)))
	cli.WriteFlags(&b, "worker flags", subFlags("worker", new(options)))
	cli.WriteFlags(&b, "start flags", subFlags("start", new(options)))
	cli.WriteFlags(&b, "relay flags", relayFlags(new(options)))
	return b.String()
}
