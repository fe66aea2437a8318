// Package h3 serves the ping API over HTTP/3 (QUIC, quic-go) and measures the
// article's transport claim: "If a packet is lost in HTTP/2, TCP stalls the
// entire connection (all streams block) … A lost packet [in HTTP/3] only
// stalls its corresponding stream".
//
// Loopback loses nothing, so loss is injected by proxies: UDPProxy drops (or
// delays) QUIC datagrams, and quic-go recovers them for real; TCPProxy cannot
// make the kernel lose a TCP segment, so it models what TCP does with one: the
// segment arrives Stall later and every byte behind it on the connection
// waits for it (in-order delivery). Compare runs the same concurrent Connect
// calls over HTTP/2 (h2c through TCPProxy) and HTTP/3 (through UDPProxy) and
// reports each call's latency quantiles.
package h3

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// SelfSigned makes a TLS certificate for names (IP addresses or host names)
// in memory, valid for a day, and a pool that trusts it: QUIC always runs
// TLS 1.3, even on loopback.
func SelfSigned(names ...string) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "part12-protocols"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool, nil
}

// NewServer serves h over HTTP/3 with cert; call Serve with a UDP socket.
func NewServer(h http.Handler, cert tls.Certificate) *http3.Server {
	return &http3.Server{
		Handler:    h,
		TLSConfig:  http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}),
		QUICConfig: &quic.Config{MaxIdleTimeout: 30 * time.Second},
	}
}

// CountConns makes srv count the QUIC connections it accepts and returns
// the count so far; call it before Serve.
func CountConns(srv *http3.Server) func() int {
	var n atomic.Int64
	next := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c *quic.Conn) context.Context {
		n.Add(1)
		if next != nil {
			return next(ctx, c)
		}
		return ctx
	}
	return func() int { return int(n.Load()) }
}

// NewClient returns an http.Client that speaks HTTP/3 and trusts roots, and
// its transport, which the caller closes.
func NewClient(roots *x509.CertPool) (*http.Client, *http3.Transport) {
	t := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}}
	return &http.Client{Transport: t, Timeout: time.Minute}, t
}

// Listen opens the UDP socket an HTTP/3 server serves on.
func Listen(addr string) (net.PacketConn, error) {
	return (&net.ListenConfig{}).ListenPacket(context.Background(), "udp", addr)
}
