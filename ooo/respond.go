package ooo

import (
	"compress/gzip"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/benitogf/pivot/ooo/messages"
)

// gzipMin is the smallest response body worth compressing.
const gzipMin = 1024

// httpError answers with status and err's text as plain text.
func httpError(w http.ResponseWriter, status int, err error) {
	http.Error(w, err.Error(), status)
}

// statusOf maps a storage, filter or body error to an HTTP status.
func statusOf(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig), errors.Is(err, ErrTooLarge):
		// A body over MaxBodyBytes and data over the storage's data limit both say
		// the value is too big.
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrNoop):
		return http.StatusConflict
	case errors.Is(err, ErrNotActive):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrInvalidPath), errors.Is(err, ErrInvalidPattern), errors.Is(err, ErrEmptyData),
		errors.Is(err, ErrInvalidData), errors.Is(err, ErrInvalidRange), errors.Is(err, ErrInvalidLimit),
		errors.Is(err, ErrGlobLock), errors.Is(err, ErrLockNotFound),
		errors.Is(err, messages.ErrEmptyBody), errors.Is(err, messages.ErrInvalidJSON):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// writeJSON answers with a JSON body, gzip-compressed when the client accepts it and
// the body is big enough.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if len(body) < gzipMin || !acceptsGzip(r) {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	h.Set("Content-Encoding", "gzip")
	h.Add("Vary", "Accept-Encoding")
	w.WriteHeader(status)
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil { // only for an invalid level
		_, _ = w.Write(body)
		return
	}
	_, _ = zw.Write(body)
	_ = zw.Close()
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}
