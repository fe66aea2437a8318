// Package payments is the article's payment API, the handler the idempotency
// middleware protects in this chapter: POST /payments creates a payment,
// GET /payments lists what was executed.
//
// It is also the second tier of the article's Alipay case study: every
// payment row carries its (tenant, Idempotency-Key), unique in the table, so
// even a request the middleware lets through twice (its record lost with a
// Redis restart, a crash between the insert and the record) inserts one row.
// The repeat answers with the stored payment, byte for byte what the first
// request answered.
package payments

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
)

// MaxAmount is the largest amount accepted, in minor units (10^12 cents).
const MaxAmount = 1_000_000_000_000

// Payment is one executed payment.
type Payment struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Key       string    `json:"idempotency_key"`
	Amount    int64     `json:"amount"`
	CreatedAt time.Time `json:"created_at"`
}

// ErrKeyReused is returned by Repo.Create when the (tenant, key) already
// names a payment of another amount.
var ErrKeyReused = errors.New("payments: idempotency key already used for a different amount")

// Repo stores payments, at most one per (tenant, idempotency key).
type Repo interface {
	// Create stores p unless a payment with p's tenant and key exists. It
	// returns the stored payment and whether this call inserted it; a
	// stored payment of another amount is ErrKeyReused.
	Create(ctx context.Context, p Payment) (Payment, bool, error)
	// List returns up to limit payments, newest first, of one tenant or of
	// all when tenant is "".
	List(ctx context.Context, tenant string, limit int) ([]Payment, error)
}

// Stats counts what the handler did.
type Stats struct {
	Runs     int64 // POST requests that reached the handler
	Inserted int64 // payments written
	Repeats  int64 // requests the table's unique key turned into a repeat of a stored payment
}

// Handler serves POST /payments and GET /payments over a Repo.
type Handler struct {
	repo                   Repo
	delay                  func() time.Duration
	log                    *slog.Logger
	mux                    *http.ServeMux
	runs, inserted, repeat atomic.Int64
}

// Options tunes a Handler.
type Options struct {
	// Delay, if set, is how long each answer takes after the payment is
	// written: a slow response path, the article's "network timeout" after
	// the INSERT succeeded. The retry-storm demo makes it longer than the
	// clients' timeout.
	Delay func() time.Duration
	Log   *slog.Logger // nil means slog.Default()
}

// NewHandler returns the payment API over repo. Behind the idempotency
// middleware it stores each payment under the request's key
// (idempotency.KeyFromContext); without it, every POST is a new payment.
func NewHandler(repo Repo, opt Options) *Handler {
	h := &Handler{repo: repo, delay: opt.Delay, log: opt.Log, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.mux.HandleFunc("POST /payments", h.create)
	h.mux.HandleFunc("GET /payments", h.list)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Stats returns the counts so far.
func (h *Handler) Stats() Stats {
	return Stats{Runs: h.runs.Load(), Inserted: h.inserted.Load(), Repeats: h.repeat.Load()}
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	h.runs.Add(1)
	key, ok := idempotency.KeyFromContext(r.Context())
	if !ok {
		// Not behind the middleware: every request is a payment of its own,
		// the article's "without idempotency" branch.
		key = idempotency.Key{Tenant: r.Header.Get(idempotency.HeaderTenant), ID: "unkeyed-" + rand.Text()}
		if err := idempotency.ValidTenant(key.Tenant); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	amount, err := decodeAmount(http.MaxBytesReader(w, r.Body, 1024))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, created, err := h.repo.Create(r.Context(), Payment{ID: "pay_" + rand.Text()[:16], Tenant: key.Tenant, Key: key.ID, Amount: amount})
	switch {
	case errors.Is(err, ErrKeyReused):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	case err != nil:
		h.log.Error("payments: create failed", "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "the payment store is unavailable; retry with the same Idempotency-Key")
		return
	case created:
		h.inserted.Add(1)
	default:
		h.repeat.Add(1)
	}
	if h.delay != nil {
		time.Sleep(h.delay()) // the payment is written: no cancelling now
	}
	w.Header().Set("Location", "/payments/"+p.ID)
	writeJSON(w, http.StatusCreated, p)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want an integer in 1..1000", v))
			return
		}
		limit = n
	}
	// One tenant's payments only: without the header this would list every
	// tenant's payments and keys.
	tenant, err := listScope(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ps, err := h.repo.List(r.Context(), tenant, limit)
	if err != nil {
		h.log.Error("payments: list failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the payment store is unavailable")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Payments []Payment `json:"payments"`
	}{Payments: ps})
}

// listScope is the tenant GET /payments lists: X-Tenant-ID, required.
var listScope = idempotency.HeaderScope(idempotency.HeaderTenant)

// decodeAmount reads {"amount": N}: one JSON object, no other field, N a whole
// number of minor units in 1..MaxAmount.
func decodeAmount(body io.Reader) (int64, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var in struct {
		Amount *int64 `json:"amount"`
	}
	var tooLarge *http.MaxBytesError
	if err := dec.Decode(&in); errors.As(err, &tooLarge) {
		return 0, errors.New("body: at most 1024 bytes")
	} else if err != nil {
		return 0, fmt.Errorf(`body: want {"amount": <minor units>}: %v`, err)
	}
	if _, err := dec.Token(); errors.As(err, &tooLarge) {
		return 0, errors.New("body: at most 1024 bytes")
	} else if err != io.EOF {
		return 0, errors.New("body: one JSON object, nothing after it")
	}
	switch {
	case in.Amount == nil:
		return 0, errors.New(`body: "amount" is missing`)
	case *in.Amount < 1 || *in.Amount > MaxAmount:
		return 0, fmt.Errorf("amount %d: want 1..%d minor units", *in.Amount, int64(MaxAmount))
	}
	return *in.Amount, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

// Memory is an in-process Repo.
type Memory struct {
	mu    sync.Mutex
	byKey map[idempotency.Key]Payment
	all   []Payment
}

var _ Repo = (*Memory)(nil)

// NewMemory returns an empty Memory repo.
func NewMemory() *Memory { return &Memory{byKey: map[idempotency.Key]Payment{}} }

// Create implements Repo.
func (m *Memory) Create(ctx context.Context, p Payment) (Payment, bool, error) {
	if err := ctx.Err(); err != nil {
		return Payment{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := idempotency.Key{Tenant: p.Tenant, ID: p.Key}
	if old, ok := m.byKey[k]; ok {
		if old.Amount != p.Amount {
			return Payment{}, false, ErrKeyReused
		}
		return old, false, nil
	}
	p.CreatedAt = time.Now().UTC().Truncate(time.Microsecond) // what PostgreSQL keeps
	m.byKey[k] = p
	m.all = append(m.all, p)
	return p, true, nil
}

// List implements Repo.
func (m *Memory) List(ctx context.Context, tenant string, limit int) ([]Payment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Payment{}
	for _, p := range slices.Backward(m.all) {
		if len(out) == limit {
			break
		}
		if tenant == "" || p.Tenant == tenant {
			out = append(out, p)
		}
	}
	return out, nil
}
