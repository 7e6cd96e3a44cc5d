package ooo

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/benitogf/pivot/ooo/messages"
)

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

// writeJSON answers with a JSON body; the server's compression (compression.go)
// gzips it when it is large and the client accepts it.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
