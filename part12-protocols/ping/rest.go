package ping

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
)

// RESTPath is where NewRESTHandler answers: POST a JSON body
// {"message":"..."}, get {"message":"...","timestamp_ms":...}.
const RESTPath = "/v1/ping"

// restRequest and restResponse are the REST API's JSON, encoded with
// encoding/json as a REST service without Protobuf would.
type restRequest struct {
	Message string `json:"message"`
}

type restResponse struct {
	Message     string `json:"message"`
	TimestampMS int64  `json:"timestamp_ms"`
}

// NewRESTHandler serves Ping as plain JSON over net/http: the REST baseline
// the benchmarks compare gRPC and Connect with. A body not declared
// application/json is a 415 (a browser sends a cross-site form or text/plain
// POST without a CORS preflight; a JSON one it asks about first), bad JSON a
// 400, a body over MaxRequestBytes a 413, any method but POST a 405.
func NewRESTHandler(svc *Service) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+RESTPath, func(w http.ResponseWriter, r *http.Request) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
			return
		}
		var req restRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "request body over the limit", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "malformed JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			http.Error(w, "malformed JSON: more after the object", http.StatusBadRequest)
			return
		}
		resp, err := svc.Ping(r.Context(), &pingv1.PingRequest{Message: req.Message})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(restResponse{Message: resp.GetMessage(), TimestampMS: resp.GetTimestampMs()})
	})
	return mux
}
