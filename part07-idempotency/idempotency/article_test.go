package idempotency_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The article's middleware, modelled here with the same steps (its code is
// not copied): read the body ignoring the read error, hash the body alone,
// GET idemp:<key> (422 on another hash, 409 while in progress, else replay),
// SETNX an in-progress record for the record's TTL (409 on an error or a
// lost race), run the handler through a recorder that writes through, and
// SET the completed record with the request's context, ignoring the error.
// The errata tests below run it on miniredis and assert what the README says
// it does.

type articleRecord struct {
	Status       string              `json:"status"`
	ResponseCode int                 `json:"response_code"`
	Headers      map[string][]string `json:"headers"`
	Body         string              `json:"body"`
	PayloadHash  string              `json:"payload_hash"`
}

// articleWriter records the status and body and passes both through.
type articleWriter struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (w *articleWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }
func (w *articleWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func articleMiddleware(rdb *redis.Client, ttl time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx, name := r.Context(), "idemp:"+key
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		if raw, err := rdb.Get(ctx, name).Result(); err == nil {
			var rec articleRecord
			if json.Unmarshal([]byte(raw), &rec) == nil {
				switch {
				case rec.PayloadHash != "" && rec.PayloadHash != hash:
					http.Error(w, `{"error":"key reused"}`, http.StatusUnprocessableEntity)
					return
				case rec.Status == "in-progress":
					http.Error(w, `{"error":"in progress"}`, http.StatusConflict)
					return
				}
				for k, vs := range rec.Headers {
					for _, v := range vs {
						w.Header().Add(k, v)
					}
				}
				w.Header().Set("X-Idempotent-Replayed", "true")
				w.WriteHeader(rec.ResponseCode)
				_, _ = w.Write([]byte(rec.Body))
				return
			}
		}
		claim, _ := json.Marshal(articleRecord{Status: "in-progress", PayloadHash: hash})
		if set, err := rdb.SetNX(ctx, name, claim, ttl).Result(); err != nil || !set {
			http.Error(w, `{"error":"conflict"}`, http.StatusConflict)
			return
		}
		rw := &articleWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rw, r)
		done, _ := json.Marshal(articleRecord{Status: "completed", ResponseCode: rw.code, Headers: w.Header(), Body: rw.body.String(), PayloadHash: hash})
		rdb.Set(ctx, name, done, ttl)
	})
}

// articleServer is the article's middleware, 24 h records, on a miniredis,
// over handler; runs counts the handler's executions.
type articleServer struct {
	mr   *miniredis.Miniredis
	rdb  *redis.Client
	h    http.Handler
	runs atomic.Int64
}

func newArticleServer(t *testing.T, handler http.HandlerFunc) *articleServer {
	t.Helper()
	s := &articleServer{mr: miniredis.RunT(t)}
	s.rdb = redis.NewClient(&redis.Options{Addr: s.mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = s.rdb.Close() })
	s.h = articleMiddleware(s.rdb, 24*time.Hour, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.runs.Add(1)
		handler(w, r)
	}))
	return s
}

func (s *articleServer) post(path, key, body string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Idempotency-Key", key)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, r)
	return rec
}

// stored is the record under key and its TTL.
func (s *articleServer) stored(t *testing.T, key string) (articleRecord, time.Duration) {
	t.Helper()
	raw, err := s.mr.Get("idemp:" + key)
	require.NoError(t, err)
	var rec articleRecord
	require.NoError(t, json.Unmarshal([]byte(raw), &rec))
	return rec, s.mr.TTL("idemp:" + key)
}

func created(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"transaction_id":"tx_1","status":"success"}`))
}

// Erratum 1: the middleware's file imports "context" and never uses it; the
// race test calls setupTestRedis, which the article never defines, and
// strings.NewReader without importing strings. A file with those three
// constructs, type-checked, gives the three errors go test printed.
func TestArticleCodeDoesNotCompile(t *testing.T) {
	const src = `package middleware

import (
	"context"
	"net/http/httptest"
)

func race() {
	_ = setupTestRedis()
	_ = httptest.NewRequest("POST", "/payments", strings.NewReader("{}"))
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "middleware.go", src, 0)
	require.NoError(t, err)
	var errs []string
	conf := types.Config{Importer: emptyImporter{}, Error: func(err error) { errs = append(errs, err.(types.Error).Msg) }}
	_, _ = conf.Check("middleware", fset, []*ast.File{f}, nil)
	assert.ElementsMatch(t, []string{`"context" imported and not used`, "undefined: setupTestRedis", "undefined: strings"}, errs)
}

// emptyImporter resolves every import to an empty package: enough for the
// unused-import and undefined-name errors.
type emptyImporter struct{}

func (emptyImporter) Import(path string) (*types.Package, error) {
	p := types.NewPackage(path, path[strings.LastIndex(path, "/")+1:])
	if path == "net/http/httptest" { // the one import the file uses
		p.Scope().Insert(types.NewFunc(token.NoPos, p, "NewRequest", types.NewSignatureType(nil, nil, nil,
			types.NewTuple(types.NewParam(token.NoPos, p, "", types.Typ[types.String]), types.NewParam(token.NoPos, p, "", types.Typ[types.String]),
				types.NewParam(token.NoPos, p, "", types.NewInterfaceType(nil, nil))),
			types.NewTuple(types.NewParam(token.NoPos, p, "", types.Typ[types.Int])), false)))
	}
	p.MarkComplete()
	return p, nil
}

// Erratum 2: "Expected: 1 Created, 99 Conflict". A request that arrives
// after the winner finished gets the replayed 201, which the article's test
// counts as Created: half the requests sent after the first half finished
// make 51 "Created" for one execution, and the test, which only logs its
// counts, passes.
func TestArticleRaceTestCountsReplaysAsCreated(t *testing.T) {
	s := newArticleServer(t, created)
	var createdN, conflict, other atomic.Int64
	send := func() {
		switch s.post("/payments", "same-key-for-all", `{"amount":100}`).Code {
		case http.StatusCreated:
			createdN.Add(1)
		case http.StatusConflict:
			conflict.Add(1)
		default:
			other.Add(1)
		}
	}
	for range 2 { // two waves of 50; the second finds the record completed
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(send)
		}
		wg.Wait()
	}
	assert.Equal(t, int64(1), s.runs.Load(), "one execution")
	assert.Zero(t, other.Load())
	assert.Equal(t, int64(100), createdN.Load()+conflict.Load())
	assert.GreaterOrEqual(t, createdN.Load(), int64(51), "the 50 late requests are replayed 201s: not \"1 Created, 99 Conflict\"")
}

// Erratum 21: the record the article documents ("Metadata Structure") and
// the one its middleware writes disagree. The documented JSON has
// idempotency_key, response_headers, response_body, created_at and
// expires_at; the Go struct writes headers and body and none of the others
// (expiry is the Redis TTL). A reader of the documented record finds no
// response in what the middleware stored.
func TestArticleRecordIsNotTheDocumentedOne(t *testing.T) {
	s := newArticleServer(t, created)
	require.Equal(t, http.StatusCreated, s.post("/payments", "k", `{"amount":100}`).Code)
	raw, err := s.mr.Get("idemp:k")
	require.NoError(t, err)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(raw), &fields))
	var stored []string
	for k := range fields {
		stored = append(stored, k)
	}
	assert.ElementsMatch(t, []string{"status", "response_code", "headers", "body", "payload_hash"}, stored)
	var documented struct {
		Key     string              `json:"idempotency_key"`
		Headers map[string][]string `json:"response_headers"`
		Body    string              `json:"response_body"`
		Created string              `json:"created_at"`
		Expires string              `json:"expires_at"`
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &documented))
	assert.Zero(t, documented, "none of the documented record's own fields is written")
}

// Erratum 5: a Redis outage answers 409 "in progress" for a request that
// does not exist.
func TestArticleStoreOutageIs409(t *testing.T) {
	s := newArticleServer(t, created)
	s.mr.Close()
	rec := s.post("/payments", "k", `{"amount":100}`)
	assert.Equal(t, http.StatusConflict, rec.Code)
	assert.Zero(t, s.runs.Load())
}

// Erratum 6: the article's own scenario. The client times out before the
// answer; net/http cancels the request's context, the SET of the completed
// record fails on it, and the key stays in progress for 24 h: every retry
// is a 409, though the payment was made.
func TestArticleClientTimeoutBlocksTheKeyForADay(t *testing.T) {
	entered := make(chan struct{})
	s := newArticleServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // the client has gone: the payment is made all the same
		created(w, r)
	})
	srv := httptest.NewServer(s.h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/payments", strings.NewReader(`{"amount":100}`))
	require.NoError(t, err)
	req.Header.Set("Idempotency-Key", "k")
	go func() { <-entered; cancel() }()
	resp, err := srv.Client().Do(req)
	if err == nil {
		_ = resp.Body.Close()
	}
	require.ErrorIs(t, err, context.Canceled)
	srv.Close() // waits for the handler to return: its SET, if any, is done
	require.Equal(t, int64(1), s.runs.Load(), "the payment was made")
	rec, ttl := s.stored(t, "k")
	assert.Equal(t, "in-progress", rec.Status)
	assert.Greater(t, ttl, 23*time.Hour)
	for range 2 {
		assert.Equal(t, http.StatusConflict, s.post("/payments", "k", `{"amount":100}`).Code, "the retry")
	}
	assert.Equal(t, int64(1), s.runs.Load())
}

// Erratum 7: a panic leaves the key in progress for 24 h.
func TestArticlePanicBlocksTheKeyForADay(t *testing.T) {
	s := newArticleServer(t, func(http.ResponseWriter, *http.Request) { panic("handler bug") })
	assert.Panics(t, func() { s.post("/payments", "k", `{"amount":100}`) })
	rec, ttl := s.stored(t, "k")
	assert.Equal(t, "in-progress", rec.Status)
	assert.Greater(t, ttl, 23*time.Hour)
	assert.Equal(t, http.StatusConflict, s.post("/payments", "k", `{"amount":100}`).Code)
	assert.Equal(t, int64(1), s.runs.Load())
}

// Erratum 8: a transient 5xx is recorded and replayed for 24 h.
func TestArticleTransient5xxIsReplayed(t *testing.T) {
	var calls atomic.Int64
	s := newArticleServer(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, `{"error":"database briefly unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		created(w, r)
	})
	require.Equal(t, http.StatusServiceUnavailable, s.post("/payments", "k", `{"amount":100}`).Code)
	for range 2 {
		again := s.post("/payments", "k", `{"amount":100}`)
		assert.Equal(t, http.StatusServiceUnavailable, again.Code)
		assert.Equal(t, "true", again.Header().Get("X-Idempotent-Replayed"))
	}
	assert.Equal(t, int64(1), s.runs.Load(), "the retry never runs")
}

// Erratum 9: keys are global. Two tenants that both send order-1: the second
// gets the first's payment.
func TestArticleKeysAreGlobal(t *testing.T) {
	s := newArticleServer(t, created)
	require.Equal(t, http.StatusCreated, s.post("/payments", "order-1", `{"amount":100}`, "X-Tenant-ID", "alice").Code)
	other := s.post("/payments", "order-1", `{"amount":100}`, "X-Tenant-ID", "bob")
	assert.Equal(t, http.StatusCreated, other.Code)
	assert.Equal(t, "true", other.Header().Get("X-Idempotent-Replayed"), "bob got alice's answer")
	assert.Equal(t, int64(1), s.runs.Load())
}

// Erratum 10: the fingerprint is the body only. A refund with a payment's
// key and body is answered with the payment, replayed; the refund never runs.
func TestArticleFingerprintIsTheBodyOnly(t *testing.T) {
	s := newArticleServer(t, created)
	require.Equal(t, http.StatusCreated, s.post("/payments", "k", `{"amount":100}`).Code)
	refund := s.post("/refunds", "k", `{"amount":100}`)
	assert.Equal(t, http.StatusCreated, refund.Code)
	assert.Equal(t, "true", refund.Header().Get("X-Idempotent-Replayed"))
	assert.Equal(t, int64(1), s.runs.Load(), "the refund handler never ran")
}

// Erratum 11: no input limits. A 100 KiB key becomes a Redis key name of
// that size, and the body is read whole whatever its size.
func TestArticleNoInputLimits(t *testing.T) {
	var got atomic.Int64
	s := newArticleServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
		created(w, r)
	})
	key := strings.Repeat("k", 100<<10)
	assert.Equal(t, http.StatusCreated, s.post("/payments", key, strings.Repeat("x", 8<<20)).Code)
	assert.Equal(t, int64(8<<20), got.Load(), "an 8 MiB body read into memory")
	keys := s.mr.Keys()
	require.Len(t, keys, 1)
	assert.Len(t, keys[0], len("idemp:")+100<<10, "the key name stored as sent")
}

// Erratum 12: io.ReadAll's error is dropped. With a body whose read fails
// after part of it (a reader error: a decompressing or size-limiting reader,
// a proxy that forwards a truncated body), the handler runs on the part, its
// 400 is recorded under the part's hash, and the client's retry with the
// whole body is a 422 for 24 h. A TCP connection cut mid-body does not get
// that far: net/http has cancelled the request's context by then, the GET
// and the SETNX fail on it, and the middleware answers 409 to nobody and
// claims nothing.
func TestArticleUnreadableBodyPoisonsTheKey(t *testing.T) {
	decode := func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Amount int }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, `{"error":"malformed JSON"}`, http.StatusBadRequest)
			return
		}
		created(w, r)
	}
	t.Run("a reader error", func(t *testing.T) {
		s := newArticleServer(t, decode)
		r := httptest.NewRequest(http.MethodPost, "/payments", &cut{strings.NewReader(`{"amount":1`)})
		r.Header.Set("Idempotency-Key", "k")
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, r)
		assert.Equal(t, http.StatusBadRequest, rec.Code, "the handler ran on the part it got")
		assert.Equal(t, http.StatusUnprocessableEntity, s.post("/payments", "k", `{"amount":100}`).Code, "the whole body's retry")
		_, ttl := s.stored(t, "k")
		assert.Greater(t, ttl, 23*time.Hour)
	})
	t.Run("a TCP connection cut mid-body", func(t *testing.T) {
		s := newArticleServer(t, decode)
		srv := httptest.NewServer(s.h)
		defer srv.Close()
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		_, err = fmt.Fprintf(conn, "POST /payments HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\nContent-Length: 14\r\n\r\n{\"amount\":1")
		require.NoError(t, err)
		require.NoError(t, conn.Close())
		srv.Close() // waits for the request to be served
		assert.Zero(t, s.runs.Load(), "the handler did not run")
		assert.Empty(t, s.mr.Keys(), "nothing claimed")
		assert.Equal(t, http.StatusCreated, s.post("/payments", "k", `{"amount":100}`).Code, "the retry runs")
	})
}
