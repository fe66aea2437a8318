package main

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/serialization"
	"github.com/sysdesign-masterclass/golang/part12-protocols/wire"
)

// wireDemo encodes the article's examples and walks real messages' bytes.
func wireDemo(_ context.Context, w io.Writer, _ options) error {
	fmt.Fprintln(w, "== The Protobuf wire format: key = (field_number << 3) | wire_type, then the value ==")
	for _, v := range []uint64{3, 300} {
		b := wire.AppendVarint(nil, v)
		fmt.Fprintf(w, "varint %d: % x = %s\n", v, b, wire.Bits(b))
	}
	resp := &pingv1.PingResponse{Message: "pong", TimestampMs: 1_781_766_000_000}
	b, err := proto.Marshal(resp)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nPingResponse{message: %q, timestamp_ms: %d}: %d bytes\n", resp.GetMessage(), resp.GetTimestampMs(), len(b))
	if err := wire.Dump(w, b); err != nil {
		return err
	}
	neg, err := proto.Marshal(&pingv1.PingResponse{TimestampMs: -1})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "timestamp_ms: -1 takes %d bytes (a negative int64 is a 10-byte varint; sint64 would take 1)\n", len(neg))
	tx, err := proto.Marshal(serialization.Sample())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nthe benchmarks' Transaction: %d bytes\n", len(tx))
	if err := wire.Dump(w, tx); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}
