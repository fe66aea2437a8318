package limiter

import (
	"time"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// AllowHashed is AllowAt with the key's hash chosen by the test, so two
// keys can be given the same one.
func (k *Keyed) AllowHashed(key string, h uint64, now time.Time) (quota.Decision, error) {
	return k.allowAt(h, key, now)
}
