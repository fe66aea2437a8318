package proxyproto_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/proxyproto"
)

var (
	src4 = netip.MustParseAddrPort("198.51.100.9:56324")
	dst4 = netip.MustParseAddrPort("192.0.2.1:443")
	src6 = netip.MustParseAddrPort("[2001:db8::9]:56324")
	dst6 = netip.MustParseAddrPort("[2001:db8::1]:443")
)

func read(s string) (proxyproto.Header, string, error) {
	r := bufio.NewReader(strings.NewReader(s))
	h, err := proxyproto.Read(r)
	rest, _ := io.ReadAll(r)
	return h, string(rest), err
}

func v2(cmd, fam byte, payload ...byte) string {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return string(append(b, payload...))
}

func TestReadValid(t *testing.T) {
	crcHeader := func() string {
		h := proxyproto.Header{Source: src4, Destination: dst4, TLVs: []byte{0x03, 0, 4, 0, 0, 0, 0}}
		b := h.AppendV2(nil)
		binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
		return string(b)
	}()
	for _, tt := range []struct {
		name, in string
		want     proxyproto.Header
	}{
		{"v1 TCP4", "PROXY TCP4 198.51.100.9 192.0.2.1 56324 443\r\nGET /", proxyproto.Header{Version: 1, Source: src4, Destination: dst4}},
		{"v1 TCP6", "PROXY TCP6 2001:db8::9 2001:db8::1 56324 443\r\nGET /", proxyproto.Header{Version: 1, Source: src6, Destination: dst6}},
		{"v1 TCP6 v4-mapped", "PROXY TCP6 ::ffff:198.51.100.9 ::ffff:192.0.2.1 56324 443\r\nGET /", proxyproto.Header{Version: 1, Source: src4, Destination: dst4}},
		{"v1 UNKNOWN", "PROXY UNKNOWN\r\nGET /", proxyproto.Header{Version: 1, Local: true}},
		{"v1 UNKNOWN with junk", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nGET /", proxyproto.Header{Version: 1, Local: true}},
		{"v2 TCP4", string(proxyproto.Header{Source: src4, Destination: dst4}.AppendV2(nil)) + "GET /", proxyproto.Header{Version: 2, Source: src4, Destination: dst4}},
		{"v2 TCP6", string(proxyproto.Header{Source: src6, Destination: dst6}.AppendV2(nil)) + "GET /", proxyproto.Header{Version: 2, Source: src6, Destination: dst6}},
		{"v2 LOCAL", v2(0x20, 0x00) + "GET /", proxyproto.Header{Version: 2, Local: true}},
		{"v2 UDP is not a TCP client", v2(0x21, 0x12, make([]byte, 12)...) + "GET /", proxyproto.Header{Version: 2, Local: true}},
		{"v2 with a good CRC32C", crcHeader + "GET /", proxyproto.Header{Version: 2, Source: src4, Destination: dst4, TLVs: []byte(crcHeader[28:])}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, rest, err := read(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, h)
			assert.Equal(t, "GET /", rest, "exactly the header is consumed")
		})
	}
}

func TestReadInvalid(t *testing.T) {
	good := proxyproto.Header{Source: src4, Destination: dst4, TLVs: []byte{0x03, 0, 4, 1, 2, 3, 4}}.AppendV2(nil)
	for _, tt := range []struct{ name, in, msg string }{
		{"v1 no CRLF", "PROXY TCP4 198.51.100.9 192.0.2.1 56324 443\nGET", "CRLF"},
		{"v1 too long", "PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n", "longer than 107"},
		{"v1 bad protocol", "PROXY UDP4 198.51.100.9 192.0.2.1 1 2\r\n", `protocol "UDP4"`},
		{"v1 v6 under TCP4", "PROXY TCP4 2001:db8::9 2001:db8::1 1 2\r\n", "address"},
		{"v1 v4 under TCP6", "PROXY TCP6 198.51.100.9 192.0.2.1 1 2\r\n", "address"},
		{"v1 leading zero octet", "PROXY TCP4 198.051.100.9 192.0.2.1 1 2\r\n", "address"},
		{"v1 port out of range", "PROXY TCP4 198.51.100.9 192.0.2.1 65536 2\r\n", "port"},
		{"v1 port leading zero", "PROXY TCP4 198.51.100.9 192.0.2.1 0443 2\r\n", "port"},
		{"v1 double space", "PROXY TCP4  198.51.100.9 192.0.2.1 1 2\r\n", "fields"},
		{"v1 missing field", "PROXY TCP4 198.51.100.9 192.0.2.1 1\r\n", "fields"},
		{"v1 zone", "PROXY TCP6 fe80::1%eth0 2001:db8::1 1 2\r\n", "address"},
		{"v2 version 1", v2(0x11, 0x11, make([]byte, 12)...), "version"},
		{"v2 command 2", v2(0x22, 0x11, make([]byte, 12)...), "command"},
		{"v2 family 4", v2(0x21, 0x41), "family"},
		{"v2 short addresses", v2(0x21, 0x11, make([]byte, 11)...), "too short"},
		{"v2 truncated TLV", v2(0x21, 0x11, append(make([]byte, 12), 0x01, 0x00)...), "trailing"},
		{"v2 TLV overruns", v2(0x21, 0x11, append(make([]byte, 12), 0x01, 0x00, 0x09, 0x00)...), "says 9 bytes"},
		{"v2 bad CRC32C", string(good), "CRC32C"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := read(tt.in)
			require.ErrorIs(t, err, proxyproto.ErrInvalid)
			assert.ErrorContains(t, err, tt.msg)
		})
	}
	for _, tt := range []struct{ name, in string }{
		{"v1 cut short", "PROXY TCP4 198.51.100.9"},
		{"v2 cut in the fixed part", "\r\n\r\n\x00\r\nQUIT\n\x21"},
		{"v2 cut in the payload", v2(0x21, 0x11, make([]byte, 12)...)[:20]},
		{"signature cut short", "PROX"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := read(tt.in)
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		})
	}
}

// No signature: ErrMissing, and nothing is consumed, even when the stream
// is shorter than a signature.
func TestReadNotProxy(t *testing.T) {
	for _, in := range []string{"GET / HTTP/1.1\r\n\r\n", "PROXX", "\r\n\r\nX", "\x16\x03\x01"} {
		_, rest, err := read(in)
		assert.ErrorIs(t, err, proxyproto.ErrMissing, "%q", in)
		assert.Equal(t, in, rest, "%q is left for the application", in)
	}
}

// FuzzRead: any input either fails with a clear error, or yields a header
// that encodes back to something Read parses to the same header, having
// read exactly the header's bytes.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 198.51.100.9 192.0.2.1 56324 443\r\n", "PROXY TCP6 2001:db8::9 2001:db8::1 1 2\r\n", "PROXY UNKNOWN\r\n",
		string(proxyproto.Header{Source: src4, Destination: dst4}.AppendV2(nil)),
		string(proxyproto.Header{Source: src6, Destination: dst6, TLVs: []byte{0x04, 0, 1, 9}}.AppendV2(nil)),
		v2(0x20, 0x00), v2(0x21, 0x31, make([]byte, 216)...), "GET / HTTP/1.1\r\n", "PROXY", "\r\n\r\n\x00\r\nQUIT\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		stream := append(in[:len(in):len(in)], "<after>"...)
		r := bufio.NewReader(bytes.NewReader(stream))
		h, err := proxyproto.Read(r)
		if err != nil {
			assert.True(t, errors.Is(err, proxyproto.ErrInvalid) || errors.Is(err, proxyproto.ErrMissing) || errors.Is(err, io.ErrUnexpectedEOF), "unexpected error %v", err)
			return
		}
		rest, _ := io.ReadAll(r)
		consumed := len(stream) - len(rest)
		if h.Version == 1 {
			require.Equal(t, bytes.IndexByte(stream, '\n')+1, consumed, "v1 stops after its line")
		} else {
			require.Equal(t, 16+int(binary.BigEndian.Uint16(stream[14:16])), consumed, "v2 stops after its declared length")
		}
		var again []byte
		if h.Version == 1 {
			again = h.AppendV1(nil)
		} else {
			again = h.AppendV2(nil)
		}
		h2, _, err := read(string(again))
		require.NoError(t, err, "re-encoded %q", again)
		if h.Local {
			require.True(t, h2.Local)
			return
		}
		require.Equal(t, h.Source, h2.Source)
		require.Equal(t, h.Destination, h2.Destination)
	})
}
