package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sysdesign-masterclass/golang/part12-protocols/serialization"
)

// serializationDemo measures the article's table on this machine.
func serializationDemo(ctx context.Context, w io.Writer, _ options) error {
	fmt.Fprintln(w, "== Serialization: the article's table against this machine (one goroutine, testing.Benchmark, ~1 s a cell) ==")
	fmt.Fprintln(w, "message: serialization.Sample(), a card payment with 7 fields (the article names none)")
	if err := ctx.Err(); err != nil {
		return err
	}
	rs, err := serialization.Measure()
	if err != nil {
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "format\tmarshal ops/s\tunmarshal ops/s\tB/op marshal|unmarshal\tallocs marshal|unmarshal\tpayload")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d | %d\t%d | %d\t%d bytes\n", r.Format.Library, mops(r.MarshalOps), mops(r.UnmarshalOps),
			r.MarshalBytes, r.UnmarshalBytes, r.MarshalAlloc, r.UnmarshalAlloc, r.Size)
	}
	for _, a := range []article{articleJSON, articleProto} {
		fmt.Fprintf(tw, "article: %s\t~%s\t~%s\t~%d B\t-\t~%d bytes\n", a.name, mops(a.marshal), mops(a.unmarshal), a.bytes, a.size)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	p, j := rs[0], rs[1]
	fmt.Fprintf(w, "Protobuf ÷ encoding/json here: marshal %.1fx, unmarshal %.1fx faster, payload %.0f%% smaller\n",
		p.MarshalOps/j.MarshalOps, p.UnmarshalOps/j.UnmarshalOps, 100*(1-float64(p.Size)/float64(j.Size)))
	fmt.Fprintf(w, "the article's table:            marshal %.1fx, unmarshal %.1fx faster, payload %.0f%% smaller\n",
		articleProto.marshal/articleJSON.marshal, articleProto.unmarshal/articleJSON.unmarshal, 100*(1-float64(articleProto.size)/float64(articleJSON.size)))
	fmt.Fprintln(w, "(protojson varies its spacing from build to build on purpose, so its payload size moves by a few bytes)")
	fmt.Fprintln(w)
	return nil
}

// article is a row of the article's table, as printed there.
type article struct {
	name               string
	marshal, unmarshal float64
	bytes, size        int
}

var (
	articleJSON  = article{"encoding/json", 1.2e6, 0.8e6, 256, 180}
	articleProto = article{"Protobuf", 10.0e6, 8.5e6, 32, 42}
)

// mops prints ops/s in millions.
func mops(v float64) string { return fmt.Sprintf("%.2fM", v/1e6) }
