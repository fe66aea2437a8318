package contract

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
)

// Bench measures what the middleware costs per request over the store
// newStore returns (called once per sub-benchmark: a fresh in-process store
// keeps one sub-benchmark's records from slowing the next one's garbage
// collection), beside the bare handler in the same run:
//
//	BenchmarkMiddleware/impl=ours/store=NAME/path=first   a new key: claim, run, record
//	BenchmarkMiddleware/impl=ours/store=NAME/path=replay  a recorded key: one look-up
//	BenchmarkMiddleware/impl=bare/store=NAME/path=…       the same requests, no middleware
//
// (the bare handler runs under both names so that benchstat -col /impl and
// the Makefile's benchratio pair it with each path).
// With roundTrips set (a redisstore.RoundTrips counter's Reset), it also
// reports round-trips/op.
func Bench(b *testing.B, name string, newStore func() idempotency.Store, roundTrips func() int64) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"pay_0123456789abcdef","tenant":"bench","amount":100}`))
	})
	tenant := "bench-" + rand.Text()[:10] // a fresh scope for every run on a shared store
	post := func(h http.Handler, key string) int {
		req := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader(`{"amount":100}`))
		req.Header.Set(idempotency.HeaderKey, key)
		req.Header.Set(idempotency.HeaderTenant, tenant)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	wrap := func(b *testing.B) http.Handler {
		mw, err := idempotency.New(idempotency.Config{Store: newStore(), Log: slog.New(slog.DiscardHandler)})
		require.NoError(b, err)
		return mw.Wrap(handler)
	}
	report := func(b *testing.B) {
		if roundTrips != nil {
			b.ReportMetric(float64(roundTrips())/float64(b.N), "round-trips/op")
		}
	}

	for _, path := range []string{"first", "replay"} {
		dims := "/store=" + name + "/path=" + path
		b.Run("impl=bare"+dims, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				post(handler, "k")
			}
		})
		b.Run("impl=ours"+dims, func(b *testing.B) {
			b.ReportAllocs()
			wrapped := wrap(b)
			key, prefix := rand.Text(), rand.Text()[:8]+"-"
			if path == "replay" {
				require.Equal(b, http.StatusCreated, post(wrapped, key))
			}
			if roundTrips != nil {
				roundTrips()
			}
			i := 0
			for b.Loop() {
				if path == "first" {
					key = prefix + strconv.Itoa(i)
					i++
				}
				if code := post(wrapped, key); code != http.StatusCreated {
					require.Equal(b, http.StatusCreated, code)
				}
			}
			report(b)
		})
	}
}
