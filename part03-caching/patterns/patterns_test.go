package patterns

import (
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// inProcess is miniredis + MemStore, created inside the case's synctest bubble:
// miniredis is reached through net.Pipe (Miniredis.Dial), so the whole case runs on
// the bubble's fake clock.
var inProcess = backend{name: "memory", bubble: true, newEnv: func(t *testing.T) *env {
	mr := miniredis.NewMiniRedis()
	rdb := dialClient(mr.Dial)
	t.Cleanup(func() { _ = rdb.Close(); mr.Close() })
	e := newEnvOver(t, "memory", true, rdb, "part03:unit:", NewMemStore(0))
	e.expire = func(key string) { mr.FastForward(mr.TTL(key)) }
	return e
}}

func TestSuite(t *testing.T) { runSuite(t, inProcess) }

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Product
		ok   bool
	}{
		{"plain", Product{ID: "p1", Name: "mug"}, true},
		{"empty name", Product{ID: "p1"}, true},
		{"unicode", Product{ID: "é-1", Name: "Zoë 山田"}, true},
		{"longest", Product{ID: strings.Repeat("x", MaxIDLen), Name: strings.Repeat("y", MaxNameLen)}, true},
		{"empty id", Product{Name: "x"}, false},
		{"id too long", Product{ID: strings.Repeat("x", MaxIDLen+1)}, false},
		{"name too long", Product{ID: "p", Name: strings.Repeat("y", MaxNameLen+1)}, false},
		{"NUL in name", Product{ID: "p", Name: "a\x00"}, false},
		{"NUL in id", Product{ID: "\x00"}, false},
		{"invalid UTF-8", Product{ID: "p", Name: "\xc3\x28"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrInvalid)
			}
		})
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for _, b := range []string{"", "{}", "12"} {
		_, err := decode([]byte(b))
		assert.Error(t, err, "decode(%q)", b)
	}
	p := Product{ID: "a:b", Name: "x:y", Version: 3}
	b, err := encode(p)
	require.NoError(t, err)
	got, err := decode(b)
	require.NoError(t, err)
	assert.Equal(t, p, got)
}
