package clientip_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/clientip"
)

// articleRightmost is the article's formula, remote_ip =
// header_values[len(header_values) - num_trusted_proxies], read as
// pseudo-code over the comma-separated entries of every X-Forwarded-For
// line, with Go's indexing: no bounds check, and no look at the peer.
func articleRightmost(r *http.Request, trustedProxies int) (ip string, err error) {
	var values []string
	for _, line := range r.Header.Values("X-Forwarded-For") {
		for _, e := range strings.Split(line, ",") {
			values = append(values, strings.TrimSpace(e))
		}
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return values[len(values)-trustedProxies], nil
}

// Erratum 6: the formula picks the right entry when the request came
// through every trusted proxy (one proxy: the client's spoofed 8.8.8.8,
// then the address the proxy saw; two proxies likewise). What it lacks is
// a bounds check and a look at the peer: a request with fewer entries than
// proxies (one that reached the server some other way) indexes below zero,
// a panic in Go (Python would take an entry from the end: the client's);
// and a client that connects directly writes the whole header, so the
// formula returns the address it chose. clientip.Hops checks both.
func TestArticleHeaderValuesFormula(t *testing.T) {
	proxies := trusted(t, "10.0.0.0/8")
	for _, tt := range []struct {
		name         string
		r            *http.Request
		hops         int
		article      string // what the formula returns
		hopsExtracts string // what clientip.Hops returns
	}{
		{"through 1 proxy", req("10.0.0.2:1", "X-Forwarded-For", "8.8.8.8, 198.51.100.7"), 1, "198.51.100.7", "198.51.100.7"},
		{"through 2 proxies", req("10.0.0.2:1", "X-Forwarded-For", "8.8.8.8, 198.51.100.7, 10.0.0.9"), 2, "198.51.100.7", "198.51.100.7"},
		{"through 2 proxies, 2 lines", req("10.0.0.2:1", "X-Forwarded-For", "8.8.8.8, 198.51.100.7", "X-Forwarded-For", "10.0.0.9"), 2, "198.51.100.7", "198.51.100.7"},
		{"fewer entries than proxies", req("10.0.0.2:1", "X-Forwarded-For", "198.51.100.7"), 2, "panic: runtime error: index out of range [-1]", "error"},
		{"a client connecting directly", req("203.0.113.7:1", "X-Forwarded-For", "1.2.3.4, 8.8.8.8"), 1, "8.8.8.8", "203.0.113.7"},
	} {
		got, err := articleRightmost(tt.r, tt.hops)
		if err != nil {
			got = err.Error()
		}
		assert.Equal(t, tt.article, got, "%s: the article's formula", tt.name)
		a, err := clientip.Hops{Count: tt.hops, Trusted: proxies}.ClientIP(tt.r)
		if tt.hopsExtracts == "error" {
			assert.ErrorIs(t, err, clientip.ErrNoAddress, tt.name)
			continue
		}
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.hopsExtracts, a.String(), "%s: clientip.Hops", tt.name)
	}
}
