package ping

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The REST endpoint answers a JSON POST and refuses everything else with a
// status that says why. A body that is not declared JSON is a 415: before,
// any Content-Type was parsed as JSON, so a cross-site form or text/plain
// POST, which a browser sends without asking the server first (no CORS
// preflight), reached the service.
func TestRESTBadInput(t *testing.T) {
	h := NewRESTHandler(&Service{})
	for _, tt := range []struct {
		name, method, contentType, body string
		status                          int
		says                            string
	}{
		{"JSON", http.MethodPost, "application/json", `{"message":"hi"}`, 200, `"message":"hi"`},
		{"JSON with a charset", http.MethodPost, "application/json; charset=utf-8", `{"message":"hi"}`, 200, `"message":"hi"`},
		{"text/plain", http.MethodPost, "text/plain", `{"message":"hi"}`, 415, "Content-Type"},
		{"a form", http.MethodPost, "application/x-www-form-urlencoded", `{"message":"hi"}`, 415, "Content-Type"},
		{"no Content-Type", http.MethodPost, "", `{"message":"hi"}`, 415, "Content-Type"},
		{"malformed JSON", http.MethodPost, "application/json", `{"message":`, 400, "malformed JSON"},
		{"two objects", http.MethodPost, "application/json", `{"message":"a"}{}`, 400, "more after the object"},
		{"unknown field", http.MethodPost, "application/json", `{"message":"a","x":1}`, 400, "unknown field"},
		{"message over the limit", http.MethodPost, "application/json", `{"message":"` + strings.Repeat("x", MaxMessageBytes+1) + `"}`, 400, "over the limit"},
		{"body over the limit", http.MethodPost, "application/json", `{"message":"` + strings.Repeat("x", MaxRequestBytes) + `"}`, 413, "over the limit"},
		{"GET", http.MethodGet, "", "", 405, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, RESTPath, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tt.says)
		})
	}
}
