package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/clientip"
)

func req(remote string, headers ...string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func trusted(t *testing.T, s string) clientip.Trusted {
	t.Helper()
	tr, err := clientip.ParseTrusted(s)
	require.NoError(t, err)
	return tr
}

func TestExtractors(t *testing.T) {
	proxies := trusted(t, "10.0.0.0/8, 2001:db8:ffff::/48")
	xff := clientip.RightmostUntrusted{Trusted: proxies}
	hops := clientip.Hops{Count: 2, Trusted: proxies}
	cf := clientip.SingleHeader{Header: "CF-Connecting-IP", Trusted: proxies}
	for _, tt := range []struct {
		name string
		x    clientip.Extractor
		r    *http.Request
		want string // an address, or "error: substring"
	}{
		{"remote addr drops the port", clientip.RemoteAddr{}, req("203.0.113.7:51234"), "203.0.113.7"},
		{"remote addr IPv6", clientip.RemoteAddr{}, req("[2001:db8::1]:443"), "2001:db8::1"},
		{"remote addr v4-mapped", clientip.RemoteAddr{}, req("[::ffff:203.0.113.7]:443"), "203.0.113.7"},
		{"remote addr zone dropped", clientip.RemoteAddr{}, req("[fe80::1%eth0]:443"), "fe80::1"},
		{"remote addr without port", clientip.RemoteAddr{}, req("203.0.113.7"), "error: missing port"},
		{"remote addr ignores XFF", clientip.RemoteAddr{}, req("203.0.113.7:1", "X-Forwarded-For", "8.8.8.8"), "203.0.113.7"},

		{"xff: untrusted peer's header ignored", xff, req("203.0.113.7:1", "X-Forwarded-For", "8.8.8.8"), "203.0.113.7"},
		{"xff: one proxy", xff, req("10.0.0.2:1", "X-Forwarded-For", "8.8.8.8, 198.51.100.9"), "198.51.100.9"},
		{"xff: two proxies", xff, req("10.0.0.2:1", "X-Forwarded-For", "8.8.8.8, 198.51.100.9, 10.1.1.1"), "198.51.100.9"},
		{"xff: repeated header lines are one list", xff, req("10.0.0.2:1", "X-Forwarded-For", "8.8.8.8", "X-Forwarded-For", "198.51.100.9,10.1.1.1"), "198.51.100.9"},
		{"xff: garbage left of the client is the client's business", xff, req("10.0.0.2:1", "X-Forwarded-For", "<script>, 198.51.100.9"), "198.51.100.9"},
		{"xff: entry with port", xff, req("10.0.0.2:1", "X-Forwarded-For", "198.51.100.9:4711"), "198.51.100.9"},
		{"xff: bracketed IPv6 with port", xff, req("10.0.0.2:1", "X-Forwarded-For", "[2001:db8::7]:4711"), "2001:db8::7"},
		{"xff: all trusted: leftmost", xff, req("10.0.0.2:1", "X-Forwarded-For", "10.9.9.9, 10.1.1.1"), "10.9.9.9"},
		{"xff: trusted peer, no header: the peer", xff, req("10.0.0.2:1"), "10.0.0.2"},
		{"xff: garbage from a trusted proxy", xff, req("10.0.0.2:1", "X-Forwarded-For", "8.8.8.8, unknown"), "error: \"unknown\""},
		{"xff: empty from a trusted proxy", xff, req("10.0.0.2:1", "X-Forwarded-For", ""), "error: entry \"\""},
		{"xff: zone from a trusted proxy", xff, req("10.0.0.2:1", "X-Forwarded-For", "fe80::1%eth0"), "error: zone"},
		{"xff: custom header", clientip.RightmostUntrusted{Header: "X-Client-Chain", Trusted: proxies}, req("10.0.0.2:1", "X-Client-Chain", "198.51.100.9", "X-Forwarded-For", "8.8.8.8"), "198.51.100.9"},
		{"xff: zero value trusts nobody", clientip.RightmostUntrusted{}, req("10.0.0.2:1", "X-Forwarded-For", "8.8.8.8"), "10.0.0.2"},

		{"hops: 2 from the right", hops, req("10.0.0.2:1", "X-Forwarded-For", "8.8.8.8, 198.51.100.9, 192.0.2.50"), "198.51.100.9"},
		{"hops: too few entries", hops, req("10.0.0.2:1", "X-Forwarded-For", "198.51.100.9"), "error: 1 entries, fewer than the 2"},
		{"hops: no header", hops, req("10.0.0.2:1"), "error: 0 entries"},
		{"hops: untrusted peer", hops, req("203.0.113.7:1", "X-Forwarded-For", "8.8.8.8, 1.1.1.1"), "203.0.113.7"},
		{"hops: zero count", clientip.Hops{Trusted: proxies}, req("10.0.0.2:1", "X-Forwarded-For", "8.8.8.8"), "10.0.0.2"},

		{"single: from a trusted edge", cf, req("10.0.0.2:1", "CF-Connecting-IP", "198.51.100.9"), "198.51.100.9"},
		{"single: from anyone else ignored", cf, req("203.0.113.7:1", "CF-Connecting-IP", "8.8.8.8"), "203.0.113.7"},
		{"single: twice is an error", cf, req("10.0.0.2:1", "CF-Connecting-IP", "198.51.100.9", "CF-Connecting-IP", "8.8.8.8"), "error: got 2"},
		{"single: missing is an error", cf, req("10.0.0.2:1"), "error: got 0"},
		{"single: a list is not one address", cf, req("10.0.0.2:1", "CF-Connecting-IP", "8.8.8.8, 198.51.100.9"), "error: not an IP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.x.ClientIP(tt.r)
			if msg, ok := cutPrefix(tt.want, "error: "); ok {
				require.ErrorIs(t, err, clientip.ErrNoAddress)
				assert.ErrorContains(t, err, msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.String())
		})
	}
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// The must-show: from an untrusted peer, no header value, however
// spoofed, changes the address every extractor returns.
func TestSpoofedHeadersFromUntrustedPeersNeverChangeTheKey(t *testing.T) {
	proxies := trusted(t, "10.0.0.0/8")
	extractors := []clientip.Extractor{
		clientip.RemoteAddr{},
		clientip.RightmostUntrusted{Trusted: proxies},
		clientip.Hops{Count: 1, Trusted: proxies},
		clientip.SingleHeader{Header: "X-Real-IP", Trusted: proxies},
		clientip.RightmostUntrusted{}, clientip.Hops{Count: 3}, clientip.SingleHeader{Header: "X-Real-IP"},
	}
	spoofs := []string{"8.8.8.8", "10.0.0.2", "8.8.8.8, 10.0.0.2", "", "garbage", "::1", "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1"}
	for _, x := range extractors {
		for _, h := range []string{"X-Forwarded-For", "X-Real-IP", "CF-Connecting-IP", "Forwarded"} {
			for _, v := range spoofs {
				got, err := x.ClientIP(req("203.0.113.7:40000", h, v))
				require.NoError(t, err)
				assert.Equal(t, netip.MustParseAddr("203.0.113.7"), got, "%T with %s: %q", x, h, v)
			}
		}
	}
}

func TestParseTrusted(t *testing.T) {
	tr := trusted(t, " 10.0.0.0/8 ,192.0.2.1, ::ffff:172.16.0.0/108, 2001:db8::/32,")
	assert.Equal(t, "10.0.0.0/8,192.0.2.1/32,172.16.0.0/12,2001:db8::/32", tr.String())
	assert.True(t, tr.Contains(netip.MustParseAddr("172.20.1.1")), "a v4-mapped prefix matches plain IPv4")
	assert.False(t, tr.Contains(netip.MustParseAddr("192.0.2.2")))
	empty := trusted(t, "")
	assert.Equal(t, "none", empty.String())
	for _, bad := range []string{"10.0.0.0/33", "nope", "fe80::1%eth0", "fe80::/10%eth0", "10.0.0.1/8/8"} {
		_, err := clientip.ParseTrusted(bad)
		assert.Error(t, err, bad)
	}
}

func TestGroup(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":             "203.0.113.7/32",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9999": "2001:db8:1:2::/64",
	} {
		assert.Equal(t, want, clientip.Group(netip.MustParseAddr(in), 64).String())
	}
	assert.Equal(t, "2001:db8::1/128", clientip.Group(netip.MustParseAddr("2001:db8::1"), 0).String())
}

// FuzzRightmostUntrusted: any header from a trusted proxy yields either an
// error wrapping ErrNoAddress or an address that appears in the header or is
// the peer; the result never has a zone or a v4-mapped form; an untrusted
// peer always gets its own address.
func FuzzRightmostUntrusted(f *testing.F) {
	for _, s := range []string{"8.8.8.8", "8.8.8.8, 10.0.0.3", "", ",", " , ,", "[::1]:80", "1.2.3.4:5", "fe80::1%eth0",
		"::ffff:1.2.3.4", "10.0.0.1,10.0.0.2", "a,b,c", "1.1.1.1,\t2.2.2.2 "} {
		f.Add(s, true)
		f.Add(s, false)
	}
	x := clientip.RightmostUntrusted{Trusted: clientip.Trusted{netip.MustParsePrefix("10.0.0.0/8")}}
	f.Fuzz(func(t *testing.T, header string, fromProxy bool) {
		peer := "203.0.113.7:1"
		if fromProxy {
			peer = "10.0.0.2:1"
		}
		got, err := x.ClientIP(req(peer, "X-Forwarded-For", header))
		if !fromProxy {
			require.NoError(t, err)
			require.Equal(t, "203.0.113.7", got.String())
			return
		}
		if err != nil {
			require.ErrorIs(t, err, clientip.ErrNoAddress)
			return
		}
		require.True(t, got.IsValid())
		require.Empty(t, got.Zone())
		require.False(t, got.Is4In6())
	})
}
