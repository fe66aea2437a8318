package ping

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1/pingv1connect"
)

// FuzzHandlers sends any body to the REST endpoint and to the Connect
// endpoint (as JSON and as binary Protobuf): every answer is 200 with the
// message echoed, or a 4xx with a message; never a 5xx, never a panic.
func FuzzHandlers(f *testing.F) {
	for _, s := range []string{`{"message":"hi"}`, `{"message":`, `{}`, `{"message":"hi","extra":1}`, "\x0a\x02hi", "\x0a\x05h", "\xff\xff", `{"message":"\ud800"}`, ""} {
		f.Add([]byte(s))
	}
	rest, conn := NewRESTHandler(&Service{}), NewHandler(&Service{})
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, c := range []struct {
			h           http.Handler
			path, ctype string
		}{
			{rest, RESTPath, "application/json"},
			{conn, pingv1connect.PingServicePingProcedure, "application/json"},
			{conn, pingv1connect.PingServicePingProcedure, "application/proto"},
		} {
			req := httptest.NewRequest(http.MethodPost, c.path, bytes.NewReader(body))
			req.Header.Set("Content-Type", c.ctype)
			rec := httptest.NewRecorder()
			c.h.ServeHTTP(rec, req)
			assert.Less(t, rec.Code, 500, "%s %s: %q -> %d %s", c.path, c.ctype, body, rec.Code, rec.Body)
			if rec.Code == http.StatusOK && c.ctype == "application/json" {
				assert.True(t, json.Valid(rec.Body.Bytes()))
			}
		}
	})
}
