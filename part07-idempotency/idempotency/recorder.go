package idempotency

import (
	"bytes"
	"net/http"
	"strings"
)

// recorder buffers the handler's response, so the middleware can record it
// before the client sees it and decide what to do if recording fails.
// Streaming handlers (Flush, Hijack) do not belong behind this middleware.
type recorder struct {
	header http.Header // what the handler sets
	sent   http.Header // header as of WriteHeader: what net/http would send
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

// WriteHeader keeps the first final status, as net/http does; informational
// (1xx) statuses cannot be buffered and are dropped.
func (r *recorder) WriteHeader(status int) {
	if r.status != 0 || status < 200 {
		return
	}
	r.status = status
	r.sent = r.header.Clone()
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.body.Write(p)
}

// finish settles what net/http would have settled: 200 if the handler wrote
// nothing, and the sniffed Content-Type if it set none. Setting it here makes
// the first response and every replay carry the same header.
func (r *recorder) finish() {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if _, ok := r.sent["Content-Type"]; !ok && r.body.Len() > 0 && r.sent.Get("Content-Encoding") == "" {
		r.sent.Set("Content-Type", http.DetectContentType(r.body.Bytes()))
	}
}

func (r *recorder) sendTo(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range r.sent {
		h[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}

// hopByHop are the fields RFC 9110 section 7.6.1 says apply to one connection
// only; a replay is another connection.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade", HeaderReplayed, HeaderBodyOmitted}

// withoutHopByHop returns a copy of h without the hop-by-hop fields, those
// named in its Connection field, and the middleware's own replay markers.
func withoutHopByHop(h http.Header) http.Header {
	out := h.Clone()
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				out.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		out.Del(name)
	}
	return out
}
