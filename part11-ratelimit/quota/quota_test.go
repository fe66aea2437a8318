package quota_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

func TestMaxInWindow(t *testing.T) {
	at := func(ms ...int) []time.Time {
		out := make([]time.Time, len(ms))
		for i, m := range ms {
			out[i] = time.Unix(0, 0).Add(time.Duration(m) * time.Millisecond)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		at   []time.Time
		want int
	}{
		{"none", nil, 0},
		{"one", at(5), 1},
		{"same instant", at(5, 5, 5), 3},
		{"exactly a window apart: (t−W, t] holds one", at(0, 1000), 1},
		{"just under a window apart", at(0, 999), 2},
		{"the densest stretch", at(0, 100, 900, 1000, 1050, 1900, 3000), 4},
	} {
		assert.Equal(t, tt.want, quota.MaxInWindow(tt.at, time.Second), tt.name)
	}
}

func TestPolicy(t *testing.T) {
	p := quota.Policy{Limit: 10, Window: time.Minute}
	assert.NoError(t, p.Validate())
	assert.Equal(t, 10, p.BurstSize())
	assert.Equal(t, 6*time.Second, p.Interval())
	assert.Equal(t, "10 per 1m0s", p.String())
	assert.Equal(t, "10 per 1m0s (burst 3)", quota.Policy{Limit: 10, Window: time.Minute, Burst: 3}.String())
	for _, bad := range []quota.Policy{{Limit: 0, Window: time.Second}, {Limit: quota.MaxLimit + 1, Window: time.Second},
		{Limit: 1, Window: time.Microsecond}, {Limit: 1, Window: 745 * time.Hour}, {Limit: 1, Window: time.Second, Burst: -1}} {
		assert.Error(t, bad.Validate(), "%+v", bad)
	}
}
