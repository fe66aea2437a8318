// Package ping is the article's PingService written once and served over every
// transport of the chapter: gRPC on grpc-go (NewGRPCServer, with health,
// reflection and keepalive), Connect, gRPC and gRPC-Web on one plain net/http
// port (NewHandler, connect-go), JSON over net/http (NewRESTHandler, the REST
// baseline of the benchmarks) and HTTP/3 (package h3 serves NewHandler over
// QUIC).
//
// What it adds to the article's snippets: the server embeds the generated
// Unimplemented types (the article's Connect server does not, so it does not
// compile against a service with StreamPing); every request is checked before
// anything runs (a message over MaxMessageBytes or an out-of-range stream is
// InvalidArgument, a body over MaxRequestBytes ResourceExhausted); a stream
// stops the moment its client goes away.
package ping

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
)

// Limits every transport enforces.
const (
	MaxMessageBytes = 1024     // PingRequest.message
	MaxRequestBytes = 64 << 10 // a whole request body, decoded or not
	MaxStreamCount  = 1000     // StreamPingRequest.count
	MaxIntervalMS   = 10_000   // StreamPingRequest.interval_ms
)

// ErrInvalid marks a request that breaks the limits above; transports map it
// to InvalidArgument (HTTP 400).
var ErrInvalid = errors.New("invalid request")

// Service is PingService's logic, independent of transport.
type Service struct {
	// Now is the server's clock (time.Now when nil); tests fix it.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Ping echoes msg with the server's clock.
func (s *Service) Ping(_ context.Context, req *pingv1.PingRequest) (*pingv1.PingResponse, error) {
	if err := checkMessage(req.GetMessage()); err != nil {
		return nil, err
	}
	return &pingv1.PingResponse{Message: req.GetMessage(), TimestampMs: s.now().UnixMilli()}, nil
}

// StreamPing calls send count times, interval apart, and stops early with
// ctx's error when the client goes away or send fails.
func (s *Service) StreamPing(ctx context.Context, req *pingv1.StreamPingRequest, send func(*pingv1.PingResponse) error) error {
	if err := checkMessage(req.GetMessage()); err != nil {
		return err
	}
	if n := req.GetCount(); n < 1 || n > MaxStreamCount {
		return fmt.Errorf("%w: count %d is out of range 1..%d", ErrInvalid, n, MaxStreamCount)
	}
	if ms := req.GetIntervalMs(); ms < 0 || ms > MaxIntervalMS {
		return fmt.Errorf("%w: interval_ms %d is out of range 0..%d", ErrInvalid, ms, MaxIntervalMS)
	}
	interval := time.Duration(req.GetIntervalMs()) * time.Millisecond
	var tick *time.Ticker
	if interval > 0 {
		tick = time.NewTicker(interval)
		defer tick.Stop()
	}
	for i := range req.GetCount() {
		if i > 0 && tick != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		msg := fmt.Sprintf("%s #%d", req.GetMessage(), i+1)
		if err := send(&pingv1.PingResponse{Message: msg, TimestampMs: s.now().UnixMilli()}); err != nil {
			return err
		}
	}
	return nil
}

func checkMessage(m string) error {
	switch {
	case len(m) > MaxMessageBytes:
		return fmt.Errorf("%w: message is %d bytes, over the limit of %d", ErrInvalid, len(m), MaxMessageBytes)
	case !utf8.ValidString(m):
		return fmt.Errorf("%w: message is not valid UTF-8", ErrInvalid)
	}
	return nil
}
