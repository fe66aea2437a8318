// Package httpapi is the HTTP driver of the users example: it turns requests
// into use-case calls and domain errors into status codes. It knows JSON and
// HTTP; the domain and the service know neither.
//
//	GET /users/{id}  200 user | 400 malformed ID | 404 unknown ID
//	PUT /users/{id}  200 user as stored (created or replaced) | 400 invalid body or user
//
// Any other method on /users/{id} gets 405 with an Allow header, from
// net/http's ServeMux (Go 1.22+ method patterns).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

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

// New returns the users API. Unexpected errors are logged to log (nil
// discards them) and answered with a bare 500, never with their text.
func New(users Users, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{users: users, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", h.get)
	mux.HandleFunc("PUT /users/{id}", h.put)
	return mux
}

type handler struct {
	users Users
	log   *slog.Logger
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	u, err := h.users.Get(r.Context(), r.PathValue("id"))
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
	u, err := h.users.Put(r.Context(), domain.User{ID: id, Name: in.Name, Email: in.Email})
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
	case errors.Is(err, domain.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, errorJSON{err.Error()})
	case errors.Is(err, domain.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorJSON{fmt.Sprintf("user %q not found", r.PathValue("id"))})
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
