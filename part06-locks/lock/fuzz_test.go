package lock

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

var resourceRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,200}$`)

// FuzzValidateResource: a name is accepted exactly when it matches the
// documented alphabet and length, and no accepted name can be a prefix path
// of another (etcd's mutex waits on Prefix+name+"/").
func FuzzValidateResource(f *testing.F) {
	for _, s := range []string{"account:42", "campaign:lucky-campaign-2024", "", "orders/42", "a b", "ü", strings.Repeat("x", 201), "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateResource(s)
		if ok := resourceRE.MatchString(s); ok != (err == nil) {
			t.Fatalf("ValidateResource(%q) = %v, want ok=%v", s, err, ok)
		}
		if err == nil && strings.Contains(s, "/") {
			t.Fatalf("%q accepted with a '/'", s)
		}
	})
}

// FuzzLeaseSeconds: under a second is an error; otherwise the lease is never
// shorter than asked and less than a second longer.
func FuzzLeaseSeconds(f *testing.F) {
	for _, d := range []int64{0, -1, int64(500 * time.Millisecond), int64(time.Second), int64(1500 * time.Millisecond), 1<<63 - 1} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		ttl := time.Duration(n)
		secs, err := LeaseSeconds(ttl)
		if ttl < time.Second {
			if err == nil {
				t.Fatalf("LeaseSeconds(%v) = %d, want an error", ttl, secs)
			}
			return
		}
		if err != nil {
			t.Fatalf("LeaseSeconds(%v): %v", ttl, err)
		}
		whole := ttl / time.Second
		if secs != int64(whole) && secs != int64(whole)+1 || secs == int64(whole) && ttl%time.Second != 0 {
			t.Fatalf("LeaseSeconds(%v) = %d s", ttl, secs)
		}
	})
}
