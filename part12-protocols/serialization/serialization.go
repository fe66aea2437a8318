// Package serialization measures the article's table "Serialization Benchmarks
// in Go" on a stated message, which the article does not give: a card payment
// (Sample: an ID, an amount in cents, a currency, a timestamp, a merchant, a
// status, two tags), encoded three ways:
//
//   - JSON with encoding/json on a plain struct with json tags (Transaction),
//     as a REST service without Protobuf does;
//   - binary Protobuf with proto.Marshal on the generated txnv1.Transaction;
//   - Protobuf's JSON mapping with protojson (what Connect's JSON and
//     gRPC-gateway send), on the same generated message.
//
// The numbers depend on the message: field names repeat in every JSON
// payload, so a message of many small fields favours Protobuf more than one
// large string does. Measure reports ops/s, bytes and allocations per op,
// and the payload size, the article's four columns.
package serialization

import (
	"encoding/json"
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	txnv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/txn/v1"
)

// Transaction is txnv1.Transaction as a REST service would declare it for
// encoding/json.
type Transaction struct {
	ID          string   `json:"id"`
	AmountMinor int64    `json:"amount_minor"`
	Currency    string   `json:"currency"`
	CreatedAtMS int64    `json:"created_at_ms"`
	MerchantID  string   `json:"merchant_id"`
	Status      string   `json:"status"`
	Tags        []string `json:"tags"`
}

// Sample is the benchmarks' message.
func Sample() *txnv1.Transaction {
	return &txnv1.Transaction{
		Id:          "txn_01HZX3K6P8Q2R5T7V9WB",
		AmountMinor: 129_999,
		Currency:    "USD",
		CreatedAtMs: 1_781_766_000_000,
		MerchantId:  "mch_4f2a9c71",
		Status:      txnv1.Status_STATUS_CAPTURED,
		Tags:        []string{"card", "3ds"},
	}
}

// SampleJSON is Sample as a Transaction.
func SampleJSON() *Transaction {
	s := Sample()
	return &Transaction{
		ID: s.GetId(), AmountMinor: s.GetAmountMinor(), Currency: s.GetCurrency(), CreatedAtMS: s.GetCreatedAtMs(),
		MerchantID: s.GetMerchantId(), Status: "captured", Tags: s.GetTags(),
	}
}

// Format is one encoding of Sample.
type Format struct {
	Name      string                 // json | proto | protojson
	Library   string                 // what encodes it
	Marshal   func() ([]byte, error) // encodes Sample
	Unmarshal func([]byte) error     // decodes into a fresh message
}

// Formats lists the encodings, Protobuf first.
func Formats() []Format {
	msg, js := Sample(), SampleJSON()
	return []Format{
		{"proto", "google.golang.org/protobuf (proto)", func() ([]byte, error) { return proto.Marshal(msg) },
			func(b []byte) error { return proto.Unmarshal(b, new(txnv1.Transaction)) }},
		{"json", "encoding/json", func() ([]byte, error) { return json.Marshal(js) },
			func(b []byte) error { return json.Unmarshal(b, new(Transaction)) }},
		{"protojson", "google.golang.org/protobuf (protojson)", func() ([]byte, error) { return protojson.Marshal(msg) },
			func(b []byte) error { return protojson.Unmarshal(b, new(txnv1.Transaction)) }},
	}
}

// Result is one format's row of the article's table.
type Result struct {
	Format                     Format
	Size                       int     // payload bytes
	MarshalOps, UnmarshalOps   float64 // per second, one goroutine
	MarshalBytes, MarshalAlloc int64   // per op
	UnmarshalBytes             int64
	UnmarshalAlloc             int64
}

// Measure runs each format's marshal and unmarshal under testing.Benchmark
// (about a second each) and returns the rows.
func Measure() ([]Result, error) {
	var out []Result
	for _, f := range Formats() {
		b, err := f.Marshal()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		if err := f.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		m := testing.Benchmark(func(tb *testing.B) {
			tb.ReportAllocs()
			for tb.Loop() {
				_, _ = f.Marshal()
			}
		})
		u := testing.Benchmark(func(tb *testing.B) {
			tb.ReportAllocs()
			for tb.Loop() {
				_ = f.Unmarshal(b)
			}
		})
		out = append(out, Result{
			Format: f, Size: len(b),
			MarshalOps: opsPerSec(m), UnmarshalOps: opsPerSec(u),
			MarshalBytes: m.AllocedBytesPerOp(), MarshalAlloc: m.AllocsPerOp(),
			UnmarshalBytes: u.AllocedBytesPerOp(), UnmarshalAlloc: u.AllocsPerOp(),
		})
	}
	return out, nil
}

func opsPerSec(r testing.BenchmarkResult) float64 {
	if r.NsPerOp() == 0 {
		return 0
	}
	return float64(r.N) / r.T.Seconds()
}
