package ratelimit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func req(remote string, xff ...string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = remote
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return r
}

func mustTrusted(t testing.TB, s string) []netip.Prefix {
	t.Helper()
	p, err := ParseTrusted(s)
	require.NoError(t, err)
	return p
}

func TestClientIP(t *testing.T) {
	lb := mustTrusted(t, "10.0.0.0/8, 2001:db8:ffff::1")
	for _, tt := range []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		want    string
		err     error
	}{
		{"no proxy trusted: the peer, header ignored", nil, "203.0.113.9:51234", []string{"1.2.3.4"}, "203.0.113.9", nil},
		{"untrusted peer's header ignored", lb, "203.0.113.9:51234", []string{"1.2.3.4"}, "203.0.113.9", nil},
		{"trusted peer: rightmost entry", lb, "10.0.0.2:40000", []string{"198.51.100.7"}, "198.51.100.7", nil},
		{"client-written entries left of it ignored", lb, "10.0.0.2:40000", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7", nil},
		{"two trusted hops skipped", lb, "10.0.0.2:40000", []string{"6.6.6.6, 198.51.100.7, 10.1.1.1"}, "198.51.100.7", nil},
		{"several header lines read right to left", lb, "10.0.0.2:40000", []string{"6.6.6.6", "198.51.100.7, 10.1.1.1"}, "198.51.100.7", nil},
		{"all hops trusted: the leftmost", lb, "10.0.0.2:40000", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9", nil},
		{"trusted peer, no header: the peer", lb, "10.0.0.2:40000", nil, "10.0.0.2", nil},
		{"entry with a port", lb, "10.0.0.2:40000", []string{"198.51.100.7:5555"}, "198.51.100.7", nil},
		{"IPv6 entry with a port", lb, "10.0.0.2:40000", []string{"[2001:db8::7]:443"}, "2001:db8::7", nil},
		{"IPv6 trusted peer", lb, "[2001:db8:ffff::1]:8080", []string{"2001:db8::7"}, "2001:db8::7", nil},
		{"IPv4-mapped peer is IPv4", lb, "[::ffff:10.0.0.2]:40000", []string{"198.51.100.7"}, "198.51.100.7", nil},
		{"empty entries skipped", lb, "10.0.0.2:40000", []string{"198.51.100.7, ,"}, "198.51.100.7", nil},
		{"garbage from a trusted hop: keyed on that hop", lb, "10.0.0.2:40000", []string{"198.51.100.7, nonsense"}, "10.0.0.2", ErrBadForwardedFor},
		{"garbage left of the client is never read", lb, "10.0.0.2:40000", []string{"nonsense, 198.51.100.7"}, "198.51.100.7", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ClientIP{Trusted: tt.trusted}.From(req(tt.remote, tt.xff...))
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, tt.want, got.String())
		})
	}
	_, err := ClientIP{}.From(req("@"))
	assert.ErrorContains(t, err, `RemoteAddr "@"`)
}

func TestKey(t *testing.T) {
	assert.Equal(t, "198.51.100.7", Key(netip.MustParseAddr("198.51.100.7")))
	assert.Equal(t, "2001:db8:1:2::/64", Key(netip.MustParseAddr("2001:db8:1:2:aaaa:bbbb:cccc:dddd")))
	assert.Equal(t, Key(netip.MustParseAddr("2001:db8:1:2::1")), Key(netip.MustParseAddr("2001:db8:1:2::ffff")), "one /64, one bucket")
}

func TestParseTrusted(t *testing.T) {
	p, err := ParseTrusted(" 10.0.0.0/8 ,192.168.1.5,, 2001:db8::/32, 10.1.2.3/8")
	require.NoError(t, err)
	assert.Equal(t, "[10.0.0.0/8 192.168.1.5/32 2001:db8::/32 10.0.0.0/8]", fmt.Sprint(p))
	_, err = ParseTrusted("10.0.0.0/8, example.com")
	assert.ErrorContains(t, err, `"example.com"`)
	p, err = ParseTrusted("")
	assert.NoError(t, err)
	assert.Empty(t, p)
}

// Whatever the header says, the result is the peer itself when the peer is
// not trusted, and otherwise an address that is the peer or one of the
// header's own entries: never an address nobody sent.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.2:40000", "6.6.6.6, 198.51.100.7")
	f.Add("203.0.113.9:1", "1.2.3.4")
	f.Add("[::ffff:10.0.0.2]:1", "[2001:db8::7]:443, 10.1.1.1")
	f.Add("10.0.0.2:40000", "nonsense,,")
	f.Add("@", "1.2.3.4")
	trusted := mustTrusted(f, "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := req(remote, xff)
		got, err := ClientIP{Trusted: trusted}.From(r)
		peer, perr := netip.ParseAddrPort(remote)
		if perr != nil {
			require.Error(t, err)
			require.False(t, got.IsValid())
			return
		}
		p := peer.Addr().Unmap()
		if !(ClientIP{Trusted: trusted}).trusted(p) {
			require.NoError(t, err)
			require.Equal(t, p, got, "an untrusted peer's header changes nothing")
			return
		}
		require.True(t, got.IsValid())
		if got == p {
			return
		}
		found := false
		for _, e := range strings.Split(xff, ",") {
			if a, err := parseHop(strings.TrimSpace(e)); err == nil && a == got {
				found = true
			}
		}
		require.True(t, found, "%v is in neither RemoteAddr nor the header", got)
	})
}
