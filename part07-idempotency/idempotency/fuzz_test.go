package idempotency_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
)

var keySeeds = []string{
	"8e03978e-40d5-43e8-bc93-6894a57f9324", `"8e03978e-40d5-43e8-bc93-6894a57f9324"`,
	`"clkyoesmbgybucifusbbtdsbohtyuuwz"`, "KG5LxwFBepaKHyUD", "a+b/c=", `"a\"b"`, `"a\\b"`, `"a\b"`,
	`"abc`, `"abc";v=1`, `"abc" "def"`, "", " ", `""`, "a, b", "ümlaut", "tab\tkey", "nul\x00", strings.Repeat("k", 255), strings.Repeat("k", 256),
}

// FuzzParseKey: any field value either parses to a valid key that reads the
// same bare and quoted, or fails with ErrInvalidKey. Never a panic.
func FuzzParseKey(f *testing.F) {
	for _, s := range keySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, field string) {
		key, err := idempotency.ParseKey(field)
		if err != nil {
			require.ErrorIs(t, err, idempotency.ErrInvalidKey)
			return
		}
		require.NoError(t, idempotency.ValidKey(key))
		bare, err := idempotency.ParseKey(key)
		require.NoError(t, err)
		require.Equal(t, key, bare, "bare form")
		quoted, err := idempotency.ParseKey(`"` + key + `"`)
		require.NoError(t, err)
		require.Equal(t, key, quoted, "sf-string form")
	})
}

// FuzzRequest sends any key field, tenant and body twice through the
// middleware: the answer is a 201 that the second request replays byte for
// byte, or a 400/413 both times; the handler runs at most once, and the
// middleware never answers 5xx.
func FuzzRequest(f *testing.F) {
	for i, s := range keySeeds {
		f.Add(s, []string{"acme", "", "a:b", "tenant-é"}[i%4], []byte(`{"amount":100}`))
	}
	f.Add("k", "acme", bytes.Repeat([]byte("x"), 2000))
	f.Fuzz(func(t *testing.T, key, tenant string, body []byte) {
		s := newServer(t, idempotency.Config{Required: true, MaxBodyBytes: 1024}, nil)
		h := http.Header{"Idempotency-Key": {key}, "X-Tenant-ID": {tenant}}
		first := s.do(req{header: h, body: string(body)})
		second := s.do(req{header: h, body: string(body)})
		switch first.Code {
		case http.StatusCreated:
			assert.Equal(t, http.StatusCreated, second.Code)
			assert.Equal(t, "true", second.Header().Get(idempotency.HeaderReplayed))
			assert.Equal(t, first.Body.Bytes(), second.Body.Bytes())
			assert.Equal(t, int64(1), s.runs.Load())
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			assert.Equal(t, first.Code, second.Code)
			assert.Zero(t, s.runs.Load())
			_, keyErr := idempotency.ParseKey(key)
			_, tenantErr := idempotency.HeaderScope(idempotency.HeaderTenant)(&http.Request{Header: h})
			assert.True(t, keyErr != nil || tenantErr != nil || len(body) > 1024, "refused a valid request: %s", first.Body)
		default:
			require.Failf(t, "unexpected answer", "%d: %s", first.Code, first.Body)
		}
	})
}

// errors.Is works through the wrapping the parsers add.
func TestParseErrorsWrapTheSentinels(t *testing.T) {
	_, err := idempotency.ParseKey(`"x`)
	assert.True(t, errors.Is(err, idempotency.ErrInvalidKey))
	_, err = idempotency.HeaderScope("X-Tenant-ID")(&http.Request{Header: http.Header{}})
	assert.ErrorIs(t, err, idempotency.ErrInvalidTenant)
}
