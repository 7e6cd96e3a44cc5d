package ooo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/messages"
	"github.com/benitogf/pivot/ooo/storage"
)

// serveWrite dispatches POST, PUT, PATCH and DELETE (behind the Deadline).
func (s *Server) serveWrite(w http.ResponseWriter, r *http.Request) {
	k := strings.TrimPrefix(r.URL.Path, "/")
	switch r.Method {
	case http.MethodPost:
		s.serveSet(w, r, k, true)
	case http.MethodPut:
		s.serveSet(w, r, k, false)
	case http.MethodPatch:
		s.servePatch(w, r, k)
	case http.MethodDelete:
		s.serveDelete(w, r, k)
	default:
		httpError(w, http.StatusMethodNotAllowed, ErrMethodNotAllowed)
	}
}

// readBody reads the request body as one JSON value, at most MaxBodyBytes of it.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (json.RawMessage, int, error) {
	limit := int64(DefaultMaxBodyBytes)
	if rt := s.rt.Load(); rt != nil {
		limit = rt.maxBody
	}
	data, err := messages.DecodeReader(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return data, 0, nil
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: the limit is %d bytes", ErrBodyTooLarge, limit)
	case errors.Is(err, messages.ErrEmptyBody):
		return nil, http.StatusBadRequest, errors.New("ooo: empty request body")
	case errors.Is(err, messages.ErrInvalidJSON):
		return nil, http.StatusBadRequest, fmt.Errorf("ooo: invalid request body: %w", err)
	default:
		return nil, http.StatusBadRequest, fmt.Errorf("ooo: read request body: %w", err)
	}
}

// writeCheck runs the checks shared by POST, PUT and PATCH: Audit, a writable key and
// a JSON body. It answers the request itself when a check fails.
func (s *Server) writeCheck(w http.ResponseWriter, r *http.Request, k string) (json.RawMessage, bool) {
	if !s.authorize(w, r) {
		return nil, false
	}
	if !key.IsWritable(k) {
		httpError(w, http.StatusBadRequest, ErrInvalidKey)
		return nil, false
	}
	data, status, err := s.readBody(w, r)
	if err != nil {
		httpError(w, status, err)
		return nil, false
	}
	return data, true
}

// serveSet answers POST (build=true: a list key gets a new index) and PUT (the literal
// key). A write that would land on a glob is refused.
func (s *Server) serveSet(w http.ResponseWriter, r *http.Request, k string, build bool) {
	data, ok := s.writeCheck(w, r, k)
	if !ok {
		return
	}
	target := k
	if build && key.IsGlob(k) {
		target = key.BuildAt(k, storage.NewStamp(s.Storage))
	}
	if key.IsGlob(target) {
		httpError(w, http.StatusBadRequest, ErrGlobWrite)
		return
	}
	data, err := s.writeFilter(target, data)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	index, err := s.Storage.Set(target, data)
	if err != nil {
		httpError(w, statusOf(err), err)
		return
	}
	s.afterWrite(target)
	writeIndex(w, r, index)
}

// servePatch answers PATCH: a JSON object merged into the stored data of a key, or of
// every key matching a list key.
func (s *Server) servePatch(w http.ResponseWriter, r *http.Request, k string) {
	data, ok := s.writeCheck(w, r, k)
	if !ok {
		return
	}
	data, err := s.writeFilter(k, data)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	if _, err := s.Storage.Patch(k, data); err != nil {
		httpError(w, statusOf(err), err)
		return
	}
	s.afterWrite(k)
	writeIndex(w, r, key.LastIndex(k))
}

// serveDelete answers DELETE of a key (404 when missing) or of every key matching a
// glob (204 even when nothing matched).
func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, k string) {
	if !s.admit(w, r, k) {
		return
	}
	if err := s.deleteFilter(k); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.Storage.Del(k); err != nil {
		httpError(w, statusOf(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeIndex(w http.ResponseWriter, r *http.Request, index string) {
	body, err := json.Marshal(struct {
		Index string `json:"index"`
	}{index})
	if err != nil { // a string always encodes
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, r, http.StatusOK, body)
}
