// Package httpapi is the HTTP driver of the users example: it turns requests
// into use-case calls and domain errors into status codes. It knows JSON and
// HTTP; the domain and the service know neither.
//
//	GET /users/{id}  200 user | 400 malformed ID | 404 unknown ID
//	PUT /users/{id}  200 user as stored (created or replaced) | 400 invalid body or user
//	either           503 + Retry-After: the store is down or too slow; retry later
//	                 500: anything else (a bug); the cause is logged, never sent
//
// Any other method on /users/{id} gets 405 with an Allow header, from
// net/http's ServeMux (Go 1.22+ method patterns).
//
// Every request runs under Config.Timeout, so a database that hangs costs a
// client at most that long and an answer it can act on (503, retry), not its
// own deadline and a broken connection.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
)

// Users is the use-case surface the handler drives; *service.UserService
// implements it. Declaring it here, where it is used, keeps the handler
// testable with a stub and free of the service's other dependencies.
type Users interface {
	Get(ctx context.Context, id string) (*domain.User, error)
	Put(ctx context.Context, u domain.User) (*domain.User, error)
}

// MaxBodyBytes bounds a PUT body; a user is a few hundred bytes.
const MaxBodyBytes = 64 << 10

// userJSON is the wire format. It lives here, not on domain.User, so renaming a
// JSON field never touches the entity.
type userJSON struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type errorJSON struct {
	Error string `json:"error"`
}

// Config tunes the handler. The zero value is ready to use.
type Config struct {
	// Log receives the causes of 500 and 503 answers; nil discards them.
	Log *slog.Logger
	// Timeout bounds each request's use case (default DefaultTimeout). Set it
	// below the deadlines of the API's clients and load balancer, so they
	// get the 503 instead of timing out themselves.
	Timeout time.Duration
	// RetryAfter is the Retry-After of a 503, rounded up to whole seconds
	// (default DefaultRetryAfter).
	RetryAfter time.Duration
}

// Defaults for Config's zero fields.
const (
	DefaultTimeout    = 3 * time.Second
	DefaultRetryAfter = time.Second
)

// New returns the users API.
func New(users Users, cfg Config) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	h := &handler{users: users, log: cfg.Log, timeout: cfg.Timeout,
		retryAfter: strconv.Itoa(int((cfg.RetryAfter + time.Second - 1) / time.Second))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", h.get)
	mux.HandleFunc("PUT /users/{id}", h.put)
	return mux
}

type handler struct {
	users      Users
	log        *slog.Logger
	timeout    time.Duration
	retryAfter string // seconds
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	u, err := h.users.Get(ctx, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userJSON(*u))
}

func (h *handler) put(w http.ResponseWriter, r *http.Request) {
	var in userJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(&in)
	if err == nil {
		// Anything but EOF after the value is an error. dec.More() is not
		// enough: it reports false for a stray '}' or ']' after the object.
		if _, err = dec.Token(); err == io.EOF {
			err = nil
		} else if err == nil || !errors.As(err, new(*http.MaxBytesError)) {
			err = errors.New("more than one JSON value, or data after it")
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorJSON{fmt.Sprintf("body exceeds %d bytes", tooBig.Limit)})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorJSON{"body: " + err.Error()})
		return
	}
	id := r.PathValue("id")
	if in.ID != "" && in.ID != id {
		writeJSON(w, http.StatusBadRequest, errorJSON{fmt.Sprintf("body id %q does not match path id %q", in.ID, id)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	u, err := h.users.Put(ctx, domain.User{ID: id, Name: in.Name, Email: in.Email})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userJSON(*u))
}

// fail maps domain errors to status codes. Only validation errors carry their
// message to the client: they describe the client's own input.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case r.Context().Err() != nil:
		// The client hung up (or its connection broke): no one reads an answer.
		return
	case errors.Is(err, domain.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, errorJSON{err.Error()})
	case errors.Is(err, domain.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorJSON{fmt.Sprintf("user %q not found", r.PathValue("id"))})
	case errors.Is(err, domain.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		// An outage, not a bug: say when to come back. GET and PUT are both
		// idempotent, so a client may retry either.
		h.log.WarnContext(r.Context(), "users api: store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", h.retryAfter)
		writeJSON(w, http.StatusServiceUnavailable, errorJSON{"user store unavailable, retry later"})
	default:
		h.log.ErrorContext(r.Context(), "users api", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, errorJSON{"internal error"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status line is out; a failed write has no one to tell
}
