package h3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

// Config is one loss experiment.
type Config struct {
	Streams      int           // calls in flight at once, on one connection
	Calls        int           // calls each stream makes, one after another
	Loss         float64       // probability a packet (datagram, segment) is lost, each way
	Stall        time.Duration // how late a lost packet arrives (TCP model, and HTTP/3 "delayed")
	MessageBytes int           // the Ping message: about one packet each way
	Seed         uint64        // the proxies' random losses
}

// DefaultConfig is the demo's experiment: 16 streams of 50 calls, 2% loss,
// a lost packet 25 ms late (of the order of QUIC's probe timeout on
// loopback, which RFC 9002 makes the RTT estimate plus the peer's maximum ACK
// delay, 25 ms by default; Linux TCP's minimum RTO is 200 ms, so the model
// flatters TCP).
var DefaultConfig = Config{Streams: 16, Calls: 50, Loss: 0.02, Stall: 25 * time.Millisecond, MessageBytes: 1000, Seed: 12}

// Transports are Compare's rows, in order.
var Transports = []string{"HTTP/2", "HTTP/3, dropped", "HTTP/3, delayed"}

// Row is one transport's result.
type Row struct {
	Transport     string
	Loss          float64
	Calls, Errors int
	Slow          int // calls that took Stall or longer: the ones a lost packet held up
	P50, P99, Max time.Duration
	Lost, Packets int64           // packets the proxy lost, of all it relayed
	Conns         int             // connections the client opened (one: every stream shares it)
	Latencies     []time.Duration // every call's, sorted
}

// Run measures one transport ("HTTP/2", "HTTP/3, dropped", "HTTP/3,
// delayed") at cfg.Loss: the Connect protocol, binary Protobuf, through the
// lossy proxy, cfg.Streams callers at once.
func Run(ctx context.Context, transport string, cfg Config) (Row, error) {
	svc := &ping.Service{}
	row := Row{Transport: transport, Loss: cfg.Loss}
	var (
		client  *http.Client
		baseURL string
		proxy   interface {
			Lost() int64
			Sent() int64
			Close() error
		}
		stop  func() error
		conns func() int
	)
	switch {
	case transport == "HTTP/2":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return row, err
		}
		srv := ping.NewHTTPServer(ping.NewHandler(svc))
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		p, err := NewTCPProxy(ln.Addr().String(), cfg.Loss, cfg.Stall, cfg.Seed)
		if err != nil {
			_ = srv.Close()
			return row, err
		}
		proxy, baseURL, client = p, "http://"+p.Addr(), ping.H2CClient()
		conns = func() int { return int(p.conns.Load()) }
		stop = func() error {
			client.CloseIdleConnections()
			err := errors.Join(p.Close(), srv.Close())
			if e := <-served; !errors.Is(e, http.ErrServerClosed) {
				err = errors.Join(err, e)
			}
			return err
		}
	case strings.HasPrefix(transport, "HTTP/3"):
		cert, roots, err := SelfSigned("127.0.0.1")
		if err != nil {
			return row, err
		}
		udp, err := Listen("127.0.0.1:0")
		if err != nil {
			return row, err
		}
		srv := NewServer(ping.NewHandler(svc), cert)
		conns = CountConns(srv)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(udp) }()
		var delay time.Duration
		if transport == "HTTP/3, delayed" {
			delay = cfg.Stall
		}
		p, err := NewUDPProxy(udp.LocalAddr().String(), cfg.Loss, delay, cfg.Seed)
		if err != nil {
			_ = srv.Close()
			return row, err
		}
		c, t := NewClient(roots)
		proxy, baseURL, client = p, "https://"+p.Addr(), c
		stop = func() error {
			err := errors.Join(t.Close(), p.Close(), srv.Close(), udp.Close())
			if e := <-served; e != nil && !errors.Is(e, http.ErrServerClosed) && !errors.Is(e, net.ErrClosed) {
				err = errors.Join(err, e)
			}
			return err
		}
	default:
		return row, fmt.Errorf("h3: unknown transport %q", transport)
	}
	pc := pingv1connect.NewPingServiceClient(client, baseURL)
	msg := strings.Repeat("x", cfg.MessageBytes)
	call := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := pc.Ping(ctx, connect.NewRequest(&pingv1.PingRequest{Message: msg}))
		return err
	}
	if err := call(ctx); err != nil { // the handshake: not measured
		return row, errors.Join(fmt.Errorf("%s: first call: %w", transport, err), stop())
	}
	lats := make([][]time.Duration, cfg.Streams)
	errs := make([]int, cfg.Streams)
	var wg sync.WaitGroup
	for s := range cfg.Streams {
		wg.Go(func() {
			for range cfg.Calls {
				start := time.Now()
				if err := call(ctx); err != nil {
					errs[s]++
					continue
				}
				lats[s] = append(lats[s], time.Since(start))
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lats...)
	slices.Sort(all)
	row.Calls, row.Latencies = len(all), all
	row.Slow = len(all) - sort.Search(len(all), func(i int) bool { return all[i] >= cfg.Stall })
	for _, e := range errs {
		row.Errors += e
	}
	if len(all) > 0 {
		row.P50, row.P99, row.Max = Quantile(all, 0.50), Quantile(all, 0.99), all[len(all)-1]
	}
	row.Lost, row.Packets, row.Conns = proxy.Lost(), proxy.Sent(), conns()
	return row, stop()
}

// Quantile returns the q-quantile (0..1) of sorted durations.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}
