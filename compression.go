package pivot

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// writeCompressible answers v as JSON with status, gzip-compressed when the body is at
// least gzipMin bytes and the request accepts gzip. Go's http.Transport asks for gzip
// and decompresses the answer itself unless the caller set Accept-Encoding or turned
// compression off (Transport.DisableCompression).
func (e *engine) writeCompressible(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := encodeBody(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeUnavailable, "encode answer: "+err.Error())
		return
	}
	if len(b) < gzipMin {
		// Never compressed, whatever the request accepts: no Vary, which would
		// cost every small answer (the common one) its bytes.
		writeBody(w, status, b)
		return
	}
	h := w.Header()
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r) {
		writeBody(w, status, b)
		return
	}
	signAnswer(w, status, b)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Encoding", "gzip")
	w.WriteHeader(status)
	zw, _ := e.gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		// BestSpeed: several times smaller for JSON pages, at a fraction of the CPU of
		// the default level.
		zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
	} else {
		zw.Reset(w)
	}
	_, _ = zw.Write(b)
	_ = zw.Close()
	zw.Reset(io.Discard) // drop the reference to w before pooling
	e.gzipWriters.Put(zw)
}

// acceptsGzip reports whether r's Accept-Encoding allows gzip: a "gzip" (or "x-gzip")
// token, or a "*" when gzip is not listed, with a quality above zero.
func acceptsGzip(r *http.Request) bool {
	star := false
	for _, field := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(field, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			ok := quality(params) > 0
			switch name {
			case "gzip", "x-gzip":
				return ok
			case "*":
				star = ok
			}
		}
	}
	return star
}

// quality reads the q parameter of an Accept-Encoding element (1 when absent, 0 when
// malformed).
func quality(params string) float64 {
	for _, p := range strings.Split(params, ";") {
		k, v, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || q < 0 {
			return 0
		}
		return q
	}
	return 1
}

// answerBody returns the body of resp as pivot reads it: decompressed when the peer
// sent it gzip-compressed and the HTTP client left it so (a transport that set
// Accept-Encoding itself; Go's own transport decompresses it before). The caller still
// bounds what it reads, so MaxBodyBytes limits the decompressed size.
func answerBody(resp *http.Response) (io.Reader, func(), error) {
	if resp.Uncompressed || !strings.EqualFold(strings.TrimSpace(resp.Header.Get("Content-Encoding")), "gzip") {
		return resp.Body, func() {}, nil
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("gzip answer: %w", err)
	}
	return zr, func() { _ = zr.Close() }, nil
}
