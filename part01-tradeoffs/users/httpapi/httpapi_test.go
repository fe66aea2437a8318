package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/httpapi"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/memory"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/service"
)

func newAPI() http.Handler {
	return httpapi.New(service.New(memory.New()), httpapi.Config{})
}

// do sends one request to h and returns the recorder and the decoded JSON body.
func do(t *testing.T, h http.Handler, method, path, body string) (*httptest.ResponseRecorder, map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	var got map[string]string
	if rec.Body.Len() > 0 && rec.Code != http.StatusMethodNotAllowed && rec.Code != http.StatusNotFound {
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"), "%s %s", method, path)
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &got) // mux 404/405 bodies are plain text
	return rec, got
}

func TestPutThenGet(t *testing.T) {
	t.Parallel()
	api := newAPI()
	want := map[string]string{"id": "ada", "name": "Ada Lovelace", "email": "ada@example.com"}
	rec, body := do(t, api, "PUT", "/users/ada", `{"name":" Ada Lovelace ","email":"ada@EXAMPLE.com"}`)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, want, body, "PUT answers the user as stored (normalized)")
	rec, body = do(t, api, "GET", "/users/ada", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, want, body)
	// PUT is idempotent and replaces.
	do(t, api, "PUT", "/users/ada", `{"name":"Countess","email":"ada@example.com"}`)
	_, body = do(t, api, "GET", "/users/ada", "")
	assert.Equal(t, "Countess", body["name"])
}

func TestStatusCodes(t *testing.T) {
	t.Parallel()
	api := newAPI()
	do(t, api, "PUT", "/users/known", `{"name":"Known","email":"known@example.com"}`)
	tests := []struct {
		name, method, path, body string
		code                     int
		errContains              string // "" = no error body expected
	}{
		{"get unknown", "GET", "/users/nobody", "", 404, `user "nobody" not found`},
		{"get malformed id", "GET", "/users/bad%20id", "", 400, "id"},
		{"put malformed email", "PUT", "/users/u1", `{"name":"A","email":"not-an-email"}`, 400, "email"},
		{"put 60 KB email", "PUT", "/users/u1", `{"name":"A","email":"` + strings.Repeat("a", 60<<10) + `@example.com"}`, 400, "RFC 5321 allows at most 254"},
		{"put 255-byte email", "PUT", "/users/u1", `{"name":"A","email":"` + strings.Repeat("a", 64) + "@" + strings.Repeat("d", 186) + `.com"}`, 400, "email is 255 bytes long"},
		{"put long local part", "PUT", "/users/u1", `{"name":"A","email":"` + strings.Repeat("a", 65) + `@example.com"}`, 400, "local part"},
		{"put name too long", "PUT", "/users/u1", `{"name":"` + strings.Repeat("n", domain.MaxNameLen+1) + `","email":"a@example.com"}`, 400, "name is longer than 200 characters"},
		{"put empty name", "PUT", "/users/u1", `{"name":"","email":"a@example.com"}`, 400, "name is empty"},
		{"put bad id", "PUT", "/users/has%20space", `{"name":"A","email":"a@example.com"}`, 400, "id"},
		{"put body id mismatch", "PUT", "/users/u1", `{"id":"u2","name":"A","email":"a@example.com"}`, 400, "does not match"},
		{"put body id match", "PUT", "/users/u1", `{"id":"u1","name":"A","email":"a@example.com"}`, 200, ""},
		{"put unknown field", "PUT", "/users/u1", `{"name":"A","email":"a@example.com","admin":true}`, 400, "unknown field"},
		{"put not json", "PUT", "/users/u1", `name=A`, 400, "body"},
		{"put two values", "PUT", "/users/u1", `{"name":"A","email":"a@example.com"}{}`, 400, "more than one"},
		{"put empty body", "PUT", "/users/u1", ``, 400, "body"},
		{"put trailing brace", "PUT", "/users/u1", `{"name":"A","email":"a@example.com"}}`, 400, "body"},
		{"put trailing bracket", "PUT", "/users/u1", `{"name":"A","email":"a@example.com"}]`, 400, "body"},
		{"put too large", "PUT", "/users/u1", `{"name":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`, 413, "exceeds"},
		{"post not allowed", "POST", "/users/u1", `{}`, 405, ""},
		{"delete not allowed", "DELETE", "/users/known", "", 405, ""},
		{"no id", "GET", "/users/", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec, body := do(t, api, tt.method, tt.path, tt.body)
			require.Equal(t, tt.code, rec.Code, "%s %s: %v", tt.method, tt.path, body)
			if tt.errContains != "" {
				assert.Contains(t, body["error"], tt.errContains)
			}
		})
	}
	// None of the rejected requests changed the stored user.
	_, body := do(t, api, "GET", "/users/known", "")
	assert.Equal(t, "Known", body["name"])
}

func TestMethodNotAllowedListsAllowedMethods(t *testing.T) {
	t.Parallel()
	rec, _ := do(t, newAPI(), "DELETE", "/users/x", "")
	allow := rec.Header().Get("Allow")
	assert.Contains(t, allow, "GET")
	assert.Contains(t, allow, "PUT")
}

// stub is a use case whose every call returns err, or, when block is set,
// waits for its context to end and returns the context's error.
type stub struct {
	err   error
	block bool
}

func (s stub) call(ctx context.Context) error {
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.err
}
func (s stub) Get(ctx context.Context, _ string) (*domain.User, error) { return nil, s.call(ctx) }
func (s stub) Put(ctx context.Context, _ domain.User) (*domain.User, error) {
	return nil, s.call(ctx)
}

var requests = [][3]string{{"GET", "/users/u1", ""}, {"PUT", "/users/u1", `{"name":"A","email":"a@example.com"}`}}

func TestInternalErrorsAreLoggedNotLeaked(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	secret := errors.New("pq: password authentication failed for user masterclass")
	api := httpapi.New(stub{err: secret}, httpapi.Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, req := range requests {
		rec, body := do(t, api, req[0], req[1], req[2])
		assert.Equal(t, http.StatusInternalServerError, rec.Code, req[0])
		assert.Equal(t, "internal error", body["error"])
		assert.Empty(t, rec.Header().Get("Retry-After"), "a bug will not go away by retrying")
	}
	assert.Equal(t, 2, strings.Count(logs.String(), "password authentication failed"), "the cause is logged:\n%s", &logs)
}

// A store that is down is an outage, not a bug: 503 with Retry-After.
func TestUnavailableStoreIs503WithRetryAfter(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	down := fmt.Errorf("postgres: find user: %w: dial tcp 10.0.0.5:5432: connect: connection refused", domain.ErrUnavailable)
	api := httpapi.New(stub{err: down}, httpapi.Config{Log: slog.New(slog.NewTextHandler(&logs, nil)), RetryAfter: 1500 * time.Millisecond})
	for _, req := range requests {
		rec, body := do(t, api, req[0], req[1], req[2])
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, req[0])
		assert.Equal(t, "2", rec.Header().Get("Retry-After"), "whole seconds, rounded up")
		assert.Equal(t, "user store unavailable, retry later", body["error"], "no internal detail")
	}
	assert.Equal(t, 2, strings.Count(logs.String(), "connection refused"))
}

// A store that hangs costs each request Config.Timeout, then a 503. The clock
// is synctest's, so the test neither waits nor depends on the machine's speed.
func TestHungStoreTimesOutAs503(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := httpapi.New(stub{block: true}, httpapi.Config{Timeout: 2 * time.Second})
		for _, req := range requests {
			start := time.Now()
			rec, _ := do(t, api, req[0], req[1], req[2])
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code, req[0])
			assert.Equal(t, "1", rec.Header().Get("Retry-After"))
			assert.Equal(t, 2*time.Second, time.Since(start), "exactly the configured timeout")
		}
	})
}

// A client that hung up gets nothing written and causes no log line.
func TestClientGoneWritesNothing(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	api := httpapi.New(stub{block: true}, httpapi.Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/users/u1", nil))
	assert.False(t, rec.Flushed)
	assert.Zero(t, rec.Body.Len())
	assert.Empty(t, logs.String())
}

// FuzzPut throws arbitrary bodies and IDs at PUT: the handler must never
// answer 500 or store a user that breaks the domain's invariants.
func FuzzPut(f *testing.F) {
	f.Add("ada", `{"name":"Ada","email":"ada@example.com"}`)
	f.Add("x", `{"name":"\u0000","email":"a@b"}`)
	f.Add("y", `{"id":"y","name":"Y","email":"Y <y@example.com>"}`)
	f.Add("z", `[1,2,3]`)
	f.Add("%41", `{"name":"A","email":"a@[127.0.0.1]"}`)
	f.Add("long", `{"name":"L","email":"`+strings.Repeat("a", 250)+`@b.c"}`)
	f.Fuzz(func(t *testing.T, id, body string) {
		if id == "." || id == ".." {
			t.Skip("ServeMux redirects dot segments before routing")
		}
		rec := httptest.NewRecorder()
		newAPI().ServeHTTP(rec, httptest.NewRequest("PUT", "/users/"+url.PathEscape(id), strings.NewReader(body)))
		switch rec.Code {
		case http.StatusOK:
			var u map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &u), "200 with an undecodable body")
			stored := domain.User{ID: u["id"], Name: u["name"], Email: u["email"]}
			require.NoError(t, stored.Validate(), "stored an invalid user")
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("PUT %q %q = %d %s", id, body, rec.Code, rec.Body)
		}
	})
}
