package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/httpapi"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/memory"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/service"
)

func newAPI() http.Handler {
	return httpapi.New(service.New(memory.New()), nil)
}

// do sends one request to h and returns the status and the decoded JSON body.
func do(t *testing.T, h http.Handler, method, path, body string) (int, map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	var got map[string]string
	if rec.Body.Len() > 0 {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" && rec.Code != http.StatusMethodNotAllowed && rec.Code != http.StatusNotFound {
			t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &got) // mux 404/405 bodies are plain text
	}
	return rec.Code, got
}

func TestPutThenGet(t *testing.T) {
	t.Parallel()
	api := newAPI()
	code, body := do(t, api, "PUT", "/users/ada", `{"name":" Ada Lovelace ","email":"ada@EXAMPLE.com"}`)
	want := map[string]string{"id": "ada", "name": "Ada Lovelace", "email": "ada@example.com"}
	if code != http.StatusOK || !equal(body, want) {
		t.Fatalf("PUT = %d %v, want 200 %v (normalized)", code, body, want)
	}
	code, body = do(t, api, "GET", "/users/ada", "")
	if code != http.StatusOK || !equal(body, want) {
		t.Fatalf("GET = %d %v, want 200 %v", code, body, want)
	}
	// PUT is idempotent and replaces.
	do(t, api, "PUT", "/users/ada", `{"name":"Countess","email":"ada@example.com"}`)
	if _, body = do(t, api, "GET", "/users/ada", ""); body["name"] != "Countess" {
		t.Fatalf("after a second PUT name = %q, want Countess", body["name"])
	}
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
			code, body := do(t, api, tt.method, tt.path, tt.body)
			if code != tt.code {
				t.Fatalf("%s %s = %d %v, want %d", tt.method, tt.path, code, body, tt.code)
			}
			if tt.errContains != "" && !strings.Contains(body["error"], tt.errContains) {
				t.Errorf("error = %q, want it to contain %q", body["error"], tt.errContains)
			}
		})
	}
	// None of the rejected requests changed the stored user.
	if _, body := do(t, api, "GET", "/users/known", ""); body["name"] != "Known" {
		t.Errorf("known user changed to %v", body)
	}
}

func TestMethodNotAllowedListsAllowedMethods(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	newAPI().ServeHTTP(rec, httptest.NewRequest("DELETE", "/users/x", nil))
	if allow := rec.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "PUT") {
		t.Errorf("Allow = %q, want GET and PUT", allow)
	}
}

// failing is a use-case stub whose storage is down.
type failing struct{ err error }

func (f failing) Get(context.Context, string) (*domain.User, error)      { return nil, f.err }
func (f failing) Put(context.Context, domain.User) (*domain.User, error) { return nil, f.err }

func TestInternalErrorsAreLoggedNotLeaked(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	secret := errors.New("dial tcp 10.0.0.5:5432: password authentication failed for user masterclass")
	api := httpapi.New(failing{secret}, slog.New(slog.NewTextHandler(&logs, nil)))
	for _, req := range [][3]string{{"GET", "/users/u1", ""}, {"PUT", "/users/u1", `{"name":"A","email":"a@example.com"}`}} {
		code, body := do(t, api, req[0], req[1], req[2])
		if code != http.StatusInternalServerError || body["error"] != "internal error" {
			t.Errorf("%s = %d %v, want 500 internal error", req[0], code, body)
		}
	}
	if n := strings.Count(logs.String(), "password authentication failed"); n != 2 {
		t.Errorf("logged the cause %d times, want 2:\n%s", n, logs.String())
	}
}

// FuzzPut throws arbitrary bodies and IDs at PUT: the handler must never
// answer 500 or store a user that breaks the domain's invariants.
func FuzzPut(f *testing.F) {
	f.Add("ada", `{"name":"Ada","email":"ada@example.com"}`)
	f.Add("x", `{"name":"\u0000","email":"a@b"}`)
	f.Add("y", `{"id":"y","name":"Y","email":"Y <y@example.com>"}`)
	f.Add("z", `[1,2,3]`)
	f.Add("%41", `{"name":"A","email":"a@[127.0.0.1]"}`)
	f.Fuzz(func(t *testing.T, id, body string) {
		if id == "." || id == ".." {
			t.Skip("ServeMux redirects dot segments before routing")
		}
		rec := httptest.NewRecorder()
		newAPI().ServeHTTP(rec, httptest.NewRequest("PUT", "/users/"+url.PathEscape(id), strings.NewReader(body)))
		switch rec.Code {
		case http.StatusOK:
			var u map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &u); err != nil {
				t.Fatalf("200 with an undecodable body %q", rec.Body)
			}
			stored := domain.User{ID: u["id"], Name: u["name"], Email: u["email"]}
			if err := stored.Validate(); err != nil {
				t.Fatalf("stored an invalid user %+v: %v", stored, err)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("PUT %q %q = %d %s", id, body, rec.Code, rec.Body)
		}
	})
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
