package idempotency

import (
	"bytes"
	"net/http"
	"strings"
)

// recorder buffers the handler's response, so the middleware can record it
// before the client sees it and decide what to do if recording fails. A body
// that grows past limit will not be recorded, so it is not held either: the
// status, the headers and what was buffered go to the client at that write,
// and the rest streams through (streamed). Handlers that need Flush or
// Hijack do not belong behind this middleware.
type recorder struct {
	w        http.ResponseWriter // the client's
	limit    int                 // the largest body that is buffered and recorded
	header   http.Header         // what the handler sets
	sent     http.Header         // header as of WriteHeader: what net/http would send
	status   int
	body     bytes.Buffer
	streamed bool // the body passed limit and went to w as it was written
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
	switch {
	case r.streamed:
		return r.w.Write(p)
	case r.body.Len()+len(p) <= r.limit:
		return r.body.Write(p)
	}
	// Past the cap: send what is buffered, then stream.
	start := r.body.Bytes() // what DetectContentType reads: the first 512 bytes
	if len(start) < 512 {
		start = append(start[:len(start):len(start)], p[:min(len(p), 512-len(start))]...)
	}
	r.sniff(start)
	r.streamed = true
	r.writeHeader()
	if _, err := r.w.Write(r.body.Bytes()); err != nil {
		return 0, err
	}
	r.body = bytes.Buffer{}
	return r.w.Write(p)
}

// sniff sets the Content-Type net/http would sniff from the body's start if
// the handler set none, so the first response and every replay carry the
// same header.
func (r *recorder) sniff(start []byte) {
	if _, ok := r.sent["Content-Type"]; !ok && len(start) > 0 && r.sent.Get("Content-Encoding") == "" {
		r.sent.Set("Content-Type", http.DetectContentType(start))
	}
}

// finish settles what net/http would have settled: 200 if the handler wrote
// nothing, and the sniffed Content-Type.
func (r *recorder) finish() {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if !r.streamed {
		r.sniff(r.body.Bytes())
	}
}

// writeHeader sends the status and headers to the client.
func (r *recorder) writeHeader() {
	h := r.w.Header()
	for k, v := range r.sent {
		h[k] = v
	}
	r.w.WriteHeader(r.status)
}

// sendTo sends a buffered response (one that was not streamed).
func (r *recorder) sendTo() {
	if r.streamed {
		return
	}
	r.writeHeader()
	_, _ = r.w.Write(r.body.Bytes())
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
