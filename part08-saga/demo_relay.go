package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part08-saga/outbox"
)

// relayCmd runs an outbox relay (-kind poll or cdc) until ctx ends.
func relayCmd(ctx context.Context, w io.Writer, o options) error {
	pool, err := openPostgres(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w; start it with `make up` or set %s", err, stack.EnvPostgres)
	}
	defer pool.Close()
	if err := outbox.Migrate(ctx, pool, o.table); err != nil {
		return err
	}
	known := map[string]bool{}
	for _, a := range strings.Split(o.aggregates, ",") {
		known[a] = true
	}
	router := outbox.Router{Known: known, DeadLetterTopic: o.deadLetter}
	writer := outbox.NewWriter(stack.KafkaBrokers())
	defer func() { _ = outbox.CloseWriter(writer) }()
	topics := &outbox.Topics{Brokers: stack.KafkaBrokers(), Partitions: 3}
	var relay interface{ Run(context.Context) error }
	switch o.kind {
	case "poll":
		relay = &outbox.Poller{Pool: pool, Table: o.table, Publisher: writer, Router: router, Topics: topics, Batch: o.batch, Interval: o.interval}
	case "cdc":
		if err := outbox.Setup(ctx, pool, o.table, o.slot, o.slot+"_pub"); err != nil {
			return err
		}
		relay = &outbox.CDC{DSN: stack.DatabaseURL(), Slot: o.slot, Publication: o.slot + "_pub", Publisher: writer, Router: router, Topics: topics, Batch: o.batch}
	}
	fmt.Fprintf(w, "relay: %s from part08.%s to Kafka at %s (aggregate types %s; dead letters to %s); Ctrl-C stops\n",
		o.kind, o.table, strings.Join(stack.KafkaBrokers(), ","), o.aggregates, o.deadLetter)
	if err := relay.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintln(w, "stopped")
	if o.kind == "cdc" {
		fmt.Fprintf(w, "replication slot %s kept: the next relay resumes from it. While nobody reads it PostgreSQL keeps WAL for it;\n"+
			"drop it when done: psql \"$DATABASE_URL\" -c \"SELECT pg_drop_replication_slot('%s'); DROP PUBLICATION %s_pub\"\n", o.slot, o.slot, o.slot)
	}
	return nil
}
