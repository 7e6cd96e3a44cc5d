package ooo

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
)

// serveKeys answers GET / with {"keys":[...]}.
func (s *Server) serveKeys(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	body, err := s.Storage.Keys()
	if err != nil {
		httpError(w, statusOf(err), fmt.Errorf("ooo: list keys: %w", err))
		return
	}
	writeJSON(w, r, http.StatusOK, body)
}

// serveGet answers GET /<key>: one stored object, or a JSON array for a glob. A missing
// key is 404 (with or without a read filter); a list is never 404.
func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, k string) {
	if !s.admit(w, r, k) {
		return
	}
	if err := s.canRead(k); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	raw, found, err := s.read(k)
	if err != nil {
		httpError(w, statusOf(err), err)
		return
	}
	if !found {
		httpError(w, http.StatusNotFound, ErrEmptyKey)
		return
	}
	out, err := s.readFilter(k, raw)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	if string(out) == meta.EmptyObject {
		httpError(w, http.StatusNotFound, ErrEmptyKey)
		return
	}
	writeJSON(w, r, http.StatusOK, out)
}

// readForStream reads a subscription key as websocket clients get it: a missing key is
// the empty object, and the read filter (and Static) apply.
func (s *Server) readForStream(k string) ([]byte, error) {
	if err := s.canRead(k); err != nil {
		return nil, err
	}
	raw, found, err := s.read(k)
	if err != nil {
		return nil, err
	}
	if !found {
		raw = []byte(meta.EmptyObject)
	}
	return s.readFilter(k, raw)
}

// read reads k from the storage, unfiltered. found is false for a missing (or empty)
// single key; a glob is always found, its list possibly empty.
func (s *Server) read(k string) (raw []byte, found bool, err error) {
	raw, err = s.Storage.Get(k)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return raw, len(raw) > 0 || key.IsGlob(k), nil
}
