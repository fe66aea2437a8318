package payments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/memstore"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/payments"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// repoSuite is what both repos must do; the PostgreSQL one runs it in
// integration_test.go. tenant keeps runs apart in a shared database.
func repoSuite(t *testing.T, repo payments.Repo, tenant string) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a hung database fails the test, not the run
	defer cancel()
	p := payments.Payment{ID: "pay_" + tenant + "1", Tenant: tenant, Key: "k1", Amount: 100}
	got, created, err := repo.Create(ctx, p)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, p.ID, got.ID)
	assert.False(t, got.CreatedAt.IsZero())

	again, created, err := repo.Create(ctx, payments.Payment{ID: "pay_" + tenant + "2", Tenant: tenant, Key: "k1", Amount: 100})
	require.NoError(t, err)
	assert.False(t, created, "same tenant and key: the stored payment")
	assert.Equal(t, got, again)

	_, _, err = repo.Create(ctx, payments.Payment{ID: "pay_" + tenant + "3", Tenant: tenant, Key: "k1", Amount: 999})
	assert.ErrorIs(t, err, payments.ErrKeyReused)

	other, created, err := repo.Create(ctx, payments.Payment{ID: "pay_" + tenant + "4", Tenant: tenant + "-b", Key: "k1", Amount: 5})
	require.NoError(t, err)
	assert.True(t, created, "another tenant's k1 is its own")

	var wg sync.WaitGroup
	results := make(chan bool, 20)
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, created, err := repo.Create(ctx, payments.Payment{ID: fmt.Sprintf("pay_%sc%d", tenant, i), Tenant: tenant, Key: "concurrent", Amount: 7})
			results <- created
			errs <- err
		})
	}
	wg.Wait()
	close(results)
	close(errs)
	inserted := 0
	for created := range results {
		if created {
			inserted++
		}
	}
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 1, inserted, "20 concurrent creates of one key insert one row")

	list, err := repo.List(ctx, tenant, 10)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "concurrent", list[0].Key, "newest first")
	assert.Equal(t, got, list[1])
	list, err = repo.List(ctx, tenant+"-b", 10)
	require.NoError(t, err)
	assert.Equal(t, []payments.Payment{other}, list)
	list, err = repo.List(ctx, tenant, 1)
	require.NoError(t, err)
	assert.Len(t, list, 1)
}

func TestMemoryRepo(t *testing.T) { repoSuite(t, payments.NewMemory(), "mem") }

func do(h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// Bad bodies are a 400 that says why, and write nothing.
func TestBadBodies(t *testing.T) {
	repo := payments.NewMemory()
	h := payments.NewHandler(repo, payments.Options{Log: quiet})
	for _, tt := range []struct{ body, msg string }{
		{``, "EOF"},
		{`{"amount":}`, "invalid character"},
		{`{"amount":"100"}`, "cannot unmarshal string"},
		{`{"amount":10.5}`, "cannot unmarshal number 10.5"},
		{`{"amount":0}`, "amount 0: want 1..1000000000000"},
		{`{"amount":-5}`, "amount -5"},
		{`{"amount":1000000000001}`, "amount 1000000000001"},
		{`{"amount":100,"currency":"EUR"}`, `unknown field "currency"`},
		{`{}`, `"amount" is missing`},
		{`{"amount":100} {"amount":100}`, "nothing after it"},
		{`{"amount":100}` + strings.Repeat(" ", 1100), "at most 1024 bytes"},
	} {
		rec := do(h, "POST", "/payments", tt.body, "X-Tenant-ID", "acme")
		assert.Equal(t, http.StatusBadRequest, rec.Code, tt.body)
		var out struct{ Error string }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
		assert.Contains(t, out.Error, tt.msg, tt.body)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x"} {
		assert.Equal(t, http.StatusBadRequest, do(h, "GET", "/payments"+q, "", "X-Tenant-ID", "acme").Code, q)
	}
	assert.Equal(t, http.StatusBadRequest, do(h, "GET", "/payments", "", "X-Tenant-ID", "a b").Code)
	list, err := repo.List(t.Context(), "", 100)
	require.NoError(t, err)
	assert.Empty(t, list)
	assert.Equal(t, int64(len(list)), h.Stats().Inserted)
}

// Without the middleware every POST is a payment: the article's double charge.
func TestWithoutTheMiddlewareEveryRetryPays(t *testing.T) {
	h := payments.NewHandler(payments.NewMemory(), payments.Options{Log: quiet})
	for range 3 {
		assert.Equal(t, http.StatusCreated, do(h, "POST", "/payments", `{"amount":100}`, "Idempotency-Key", "k", "X-Tenant-ID", "acme").Code)
	}
	assert.Equal(t, payments.Stats{Runs: 3, Inserted: 3}, h.Stats())
	rec := do(h, "GET", "/payments", "", "X-Tenant-ID", "acme")
	var out struct{ Payments []payments.Payment }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	assert.Len(t, out.Payments, 3)
}

// GET /payments lists one tenant's payments: without X-Tenant-ID it is a
// 400, not every tenant's payments and keys.
func TestListIsPerTenant(t *testing.T) {
	h := payments.NewHandler(payments.NewMemory(), payments.Options{Log: quiet})
	for _, tenant := range []string{"acme", "globex"} {
		require.Equal(t, http.StatusCreated, do(h, "POST", "/payments", `{"amount":100}`, "X-Tenant-ID", tenant).Code)
	}
	rec := do(h, "GET", "/payments", "")
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), "the X-Tenant-ID header is missing")
	assert.NotContains(t, rec.Body.String(), "pay_", "no payment listed")
	rec = do(h, "GET", "/payments", "", "X-Tenant-ID", "acme")
	require.Equal(t, http.StatusOK, rec.Code)
	var out struct{ Payments []payments.Payment }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.Len(t, out.Payments, 1)
	assert.Equal(t, "acme", out.Payments[0].Tenant)
}

// The table's unique key is the second tier: two middlewares that share no
// store (a Redis that forgot everything, two regions) still write one
// payment, and the second answer is the first one byte for byte.
func TestUniqueKeyBacksUpALostRecord(t *testing.T) {
	repo := payments.NewMemory()
	h := payments.NewHandler(repo, payments.Options{Log: quiet})
	wrap := func() http.Handler {
		mw, err := idempotency.New(idempotency.Config{Store: memstore.New(), Log: quiet})
		require.NoError(t, err)
		return mw.Wrap(h)
	}
	first := do(wrap(), "POST", "/payments", `{"amount":100}`, "Idempotency-Key", "k", "X-Tenant-ID", "acme")
	second := do(wrap(), "POST", "/payments", `{"amount":100}`, "Idempotency-Key", "k", "X-Tenant-ID", "acme")
	require.Equal(t, http.StatusCreated, first.Code)
	assert.Equal(t, http.StatusCreated, second.Code)
	assert.Equal(t, first.Body.String(), second.Body.String())
	assert.Equal(t, first.Header().Get("Location"), second.Header().Get("Location"))
	assert.Equal(t, payments.Stats{Runs: 2, Inserted: 1, Repeats: 1}, h.Stats())
	other := do(wrap(), "POST", "/payments", `{"amount":999}`, "Idempotency-Key", "k", "X-Tenant-ID", "acme")
	assert.Equal(t, http.StatusUnprocessableEntity, other.Code, "and a different amount is refused there too")
}

// A store failure answers 503 with Retry-After, which the middleware does not
// record, so the retry runs again.
func TestRepoOutageIs503(t *testing.T) {
	h := payments.NewHandler(failing{}, payments.Options{Log: quiet})
	rec := do(h, "POST", "/payments", `{"amount":100}`, "X-Tenant-ID", "acme")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.Equal(t, http.StatusServiceUnavailable, do(h, "GET", "/payments", "", "X-Tenant-ID", "acme").Code)
}

type failing struct{}

func (failing) Create(context.Context, payments.Payment) (payments.Payment, bool, error) {
	return payments.Payment{}, false, fmt.Errorf("dial tcp: connection refused")
}
func (failing) List(context.Context, string, int) ([]payments.Payment, error) {
	return nil, fmt.Errorf("dial tcp: connection refused")
}
