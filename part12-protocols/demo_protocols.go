package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/quic-go/quic-go/http3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
	"github.com/sysdesign-masterclass/golang/part12-protocols/graph"
	"github.com/sysdesign-masterclass/golang/part12-protocols/h3"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

// protocol is one way to call Ping.
type protocol struct {
	name, transport string
	body            string       // the request body's encoding
	wire            func() int64 // bytes on the server's socket so far
	reqBytes        int
	call            func(ctx context.Context) (*pingv1.PingResponse, error)
	close           func()
}

const demoMessage = "hello, protocols"

// protocols dials every way the servers can be called, each on its own
// client so its connection's bytes are its own.
func protocols(s *servers) ([]protocol, error) {
	req := &pingv1.PingRequest{Message: demoMessage}
	protoSize := proto.Size(req)
	pj, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	rj, err := json.Marshal(map[string]string{"message": demoMessage})
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	grpcClient := pingv1.NewPingServiceClient(conn)
	base := "http://" + s.httpAddr
	connectOver := func(hc *http.Client, opts ...connect.ClientOption) func(context.Context) (*pingv1.PingResponse, error) {
		url := base
		if _, ok := hc.Transport.(*http3.Transport); ok {
			url = "https://" + s.udp.LocalAddr().String()
		}
		c := pingv1connect.NewPingServiceClient(hc, url, opts...)
		return func(ctx context.Context) (*pingv1.PingResponse, error) {
			r, err := c.Ping(ctx, connect.NewRequest(req))
			if err != nil {
				return nil, err
			}
			return r.Msg, nil
		}
	}
	h2 := func() *http.Client { return ping.H2CClient() }
	h1 := func() *http.Client { return &http.Client{Transport: &http.Transport{}} }
	ps := []protocol{
		{name: "gRPC (grpc-go)", transport: "HTTP/2 h2c", body: "protobuf", wire: s.grpcLn.total, reqBytes: protoSize + 5,
			call:  func(ctx context.Context) (*pingv1.PingResponse, error) { return grpcClient.Ping(ctx, req) },
			close: func() { _ = conn.Close() }},
	}
	for _, c := range []struct {
		name, transport, body string
		hc                    *http.Client
		size                  int
		opts                  []connect.ClientOption
	}{
		{"gRPC (connect-go)", "HTTP/2 h2c", "protobuf", h2(), protoSize + 5, []connect.ClientOption{connect.WithGRPC()}},
		{"gRPC-Web (connect-go)", "HTTP/1.1", "protobuf", h1(), protoSize + 5, []connect.ClientOption{connect.WithGRPCWeb()}},
		{"Connect", "HTTP/2 h2c", "protobuf", h2(), protoSize, nil},
		{"Connect", "HTTP/1.1", "JSON (protojson)", h1(), len(pj), []connect.ClientOption{connect.WithProtoJSON()}},
	} {
		ps = append(ps, protocol{name: c.name, transport: c.transport, body: c.body, wire: s.httpLn.total, reqBytes: c.size,
			call: connectOver(c.hc, c.opts...), close: c.hc.CloseIdleConnections})
	}
	quic, qt := h3.NewClient(s.roots)
	ps = append(ps, protocol{name: "Connect", transport: "HTTP/3 (QUIC)", body: "protobuf", wire: s.udp.total, reqBytes: protoSize,
		call: connectOver(quic), close: func() { _ = qt.Close() }})
	rest := h1()
	ps = append(ps, protocol{name: "REST", transport: "HTTP/1.1", body: "JSON (encoding/json)", wire: s.httpLn.total, reqBytes: len(rj),
		call: func(ctx context.Context) (*pingv1.PingResponse, error) {
			r, err := http.NewRequestWithContext(ctx, http.MethodPost, base+ping.RESTPath, bytes.NewReader(rj))
			if err != nil {
				return nil, err
			}
			r.Header.Set("Content-Type", "application/json")
			resp, err := rest.Do(r)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			var out struct {
				Message     string `json:"message"`
				TimestampMS int64  `json:"timestamp_ms"`
			}
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				return nil, fmt.Errorf("REST: %s: %s", resp.Status, b)
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				return nil, err
			}
			return &pingv1.PingResponse{Message: out.Message, TimestampMs: out.TimestampMS}, nil
		}, close: rest.CloseIdleConnections})
	gql := h1()
	gq, err := json.Marshal(map[string]string{"query": fmt.Sprintf(`{ ping(message: %q) { message timestampMs } }`, demoMessage)})
	if err != nil {
		return nil, err
	}
	ps = append(ps, protocol{name: "GraphQL", transport: "HTTP/1.1", body: "JSON (query)", wire: s.httpLn.total, reqBytes: len(gq),
		call: func(ctx context.Context) (*pingv1.PingResponse, error) {
			r, err := http.NewRequestWithContext(ctx, http.MethodPost, base+GraphQLPath, bytes.NewReader(gq))
			if err != nil {
				return nil, err
			}
			r.Header.Set("Content-Type", "application/json")
			resp, err := gql.Do(r)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			var out struct {
				Data struct {
					Ping struct {
						Message string `json:"message"`
					} `json:"ping"`
				} `json:"data"`
				Errors []json.RawMessage `json:"errors"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				return nil, err
			}
			if len(out.Errors) > 0 {
				return nil, fmt.Errorf("GraphQL: %s", out.Errors[0])
			}
			return &pingv1.PingResponse{Message: out.Data.Ping.Message}, nil
		}, close: gql.CloseIdleConnections})
	return ps, nil
}

// protocolsDemo calls Ping o.calls times over each protocol, one call at a
// time, and prints what each call cost on the wire and in time.
func protocolsDemo(ctx context.Context, w io.Writer, o options) error {
	s, err := startServers(&ping.Service{}, graph.NewMemory(graph.Shape{}), "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer func() { _, _ = s.stop(5 * time.Second) }()
	ps, err := protocols(s)
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range ps {
			p.close()
		}
	}()
	fmt.Fprintf(w, "== One Ping %q over every protocol: %d sequential calls each, on loopback ==\n", demoMessage, o.calls)
	tw := table(w)
	fmt.Fprintln(tw, "protocol\ttransport\tbody\trequest body\twire bytes/call\tmedian\tp99")
	for _, p := range ps {
		if _, err := p.call(ctx); err != nil { // the first call dials: not counted
			return fmt.Errorf("%s: %w", p.name, err)
		}
		before := p.wire()
		lat := make([]time.Duration, 0, o.calls)
		for range o.calls {
			start := time.Now()
			resp, err := p.call(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			lat = append(lat, time.Since(start))
			if resp.GetMessage() != demoMessage {
				return fmt.Errorf("%s answered %q", p.name, resp.GetMessage())
			}
		}
		wire := float64(p.wire()-before) / float64(o.calls)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d B\t%.0f B\t%s\t%s\n", p.name, p.transport, p.body, p.reqBytes, wire, ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "wire bytes/call: both directions on the server's socket after the first call (headers, framing, HPACK's and")
	fmt.Fprintln(w, "QPACK's indexed headers; on HTTP/3 the UDP payloads: QUIC headers, ACKs, encryption); gRPC adds a 5-byte")
	fmt.Fprintln(w, "length prefix to the body and sends its status in trailers.")
	fmt.Fprintln(w)
	return nil
}
