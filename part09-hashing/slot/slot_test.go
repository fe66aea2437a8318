package slot

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

// The integration tests start go-redis clients; none may leave a goroutine.
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// crc16Bitwise is the CRC16-XMODEM definition, one bit at a time: the table in
// slot.go must agree with it.
func crc16Bitwise(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// hashTagBySpec follows the cluster spec's prose literally.
func hashTagBySpec(key string) string {
	_, after, found := strings.Cut(key, "{")
	if !found {
		return key
	}
	tag, _, found := strings.Cut(after, "}")
	if !found || tag == "" {
		return key
	}
	return tag
}

func TestCRC16KnownValues(t *testing.T) {
	// 0x31C3 is the XMODEM check value; the slots are what CLUSTER KEYSLOT
	// answers (also asserted against a live cluster by the integration test).
	require.Equal(t, uint16(0x31C3), CRC16("123456789"))
	for key, want := range map[string]int{"foo": 12182, "bar": 5061, "hello": 866, "": 0,
		"user:1001:profile": 2549, "user:1001:cart": 6577, "{user:1001}:profile": 5712} {
		assert.Equal(t, want, Of(key), "Of(%q)", key)
	}
}

func TestHashTags(t *testing.T) {
	for _, tc := range []struct{ key, tag string }{
		{"user:1001", "user:1001"},
		{"{user:1001}:profile", "user:1001"},
		{"profile:{user:1001}", "user:1001"},
		{"foo{bar}{zap}", "bar"},     // only the first tag
		{"foo{}{bar}", "foo{}{bar}"}, // empty first tag: whole key, later tags ignored
		{"{}", "{}"},
		{"foo{", "foo{"},         // lone '{'
		{"foo}bar{", "foo}bar{"}, // '}' before '{' does not close it
		{"{{x}}", "{x"},          // first '{', first '}' after it
		{"a{b}}", "b"},
		{"{", "{"},
		{"", ""},
	} {
		assert.Equal(t, tc.tag, HashTag(tc.key), "HashTag(%q)", tc.key)
	}
	assert.Equal(t, Of("user:1001"), Of("{user:1001}:profile"), "keys sharing a hash tag share a slot")
	assert.Equal(t, Of("user:1001"), Of("{user:1001}:cart"), "keys sharing a hash tag share a slot")
	assert.NotEqual(t, Of("user:1001:profile"), Of("user:1001:cart"), "the article's untagged pair")
}

func TestParseRedirect(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want Redirect
		ok   bool
	}{
		{"MOVED 3999 127.0.0.1:7002", Redirect{Slot: 3999, Addr: "127.0.0.1:7002"}, true},
		{"ASK 16383 [::1]:7000", Redirect{Ask: true, Slot: 16383, Addr: "[::1]:7000"}, true},
		{"MOVED 0 :7001", Redirect{Slot: 0, Addr: ":7001"}, true},
		{"MOVED 16384 127.0.0.1:7002", Redirect{}, false},
		{"MOVED -1 127.0.0.1:7002", Redirect{}, false},
		{"MOVED 012 127.0.0.1:7002", Redirect{}, false},
		{"MOVED 12 127.0.0.1", Redirect{}, false},
		{"MOVED 12 127.0.0.1:70000", Redirect{}, false},
		{"MOVED 12 127.0.0.1:7000 extra", Redirect{}, false},
		{"CROSSSLOT Keys in request don't hash to the same slot", Redirect{}, false},
		{"moved 12 127.0.0.1:7000", Redirect{}, false},
		{"", Redirect{}, false},
	} {
		got, ok := ParseRedirect(tc.msg)
		assert.Equal(t, tc.ok, ok, "ParseRedirect(%q)", tc.msg)
		assert.Equal(t, tc.want, got, "ParseRedirect(%q)", tc.msg)
	}
}

func FuzzSlot(f *testing.F) {
	for _, s := range []string{"", "foo", "{user:1001}:profile", "user:1001:cart", "foo{}{bar}", "foo{", "{{x}}", "}{", "a{b}}c", "\xff{\x00}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		tag := HashTag(key)
		require.Equal(t, hashTagBySpec(key), tag, "HashTag(%q) against the spec's prose", key)
		s := Of(key)
		require.True(t, s >= 0 && s < Count, "Of(%q) = %d out of range", key, s)
		require.Equal(t, int(crc16Bitwise(tag)%Count), s, "Of(%q) against a bitwise CRC16", key)
		if tag != key { // a real tag: anything around it keeps the slot
			require.Contains(t, key, "{"+tag+"}")
			require.Equal(t, s, Of("x{"+tag+"}y{z}"), "tag %q of %q does not pin the slot", tag, key)
		}
	})
}

func FuzzParseRedirect(f *testing.F) {
	for _, s := range []string{"MOVED 3999 127.0.0.1:7002", "ASK 1 [::1]:7000", "ASK 1 ::1:7000", "MOVED 0 :7001", "MOVED 16384 x:1", "ASK  1 a:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		r, ok := ParseRedirect(msg)
		if !ok {
			return
		}
		require.True(t, r.Slot >= 0 && r.Slot < Count && r.Addr != "", "ParseRedirect(%q) = %+v", msg, r)
		// Redis never brackets a host; a bracketed address is accepted but
		// formats back the way Redis writes it.
		if !strings.Contains(msg, "[") {
			require.Equal(t, msg, r.String(), "ParseRedirect(%q) = %+v formats back differently", msg, r)
		}
		again, ok := ParseRedirect(r.String())
		require.True(t, ok, "round trip of %q", msg)
		require.Equal(t, r, again, "round trip of %q", msg)
	})
}

// Redis formats redirects as "-%s %d %s:%d" with the node's endpoint as is, so
// an IPv6 node comes without brackets (cluster.c, clusterRedirectClient).
// Addr must still be something net.Dial accepts and Owners would name.
func TestParseRedirectIPv6AsRedisSendsIt(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want Redirect
	}{
		{"MOVED 3999 ::1:7002", Redirect{Slot: 3999, Addr: "[::1]:7002"}},
		{"ASK 12 2001:db8::5:6379", Redirect{Ask: true, Slot: 12, Addr: "[2001:db8::5]:6379"}},
		{"MOVED 7 fe80::1%eth0:7000", Redirect{Slot: 7, Addr: "[fe80::1%eth0]:7000"}},
	} {
		got, ok := ParseRedirect(tc.msg)
		if !assert.True(t, ok, "ParseRedirect(%q)", tc.msg) || !assert.Equal(t, tc.want, got, "ParseRedirect(%q)", tc.msg) {
			continue
		}
		_, _, err := net.SplitHostPort(got.Addr)
		assert.NoError(t, err, "ParseRedirect(%q).Addr = %q is not dialable", tc.msg, got.Addr)
		assert.Equal(t, tc.msg, got.String(), "formats back as Redis sends it")
	}
}
