package ooo

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

// HeaderUnreadable is set on the answer to a list read (GET of a glob, and GET /) when
// the storage left records out because they are unreadable on disk (see
// storage.DamageReporter): its value is how many. The rest of the list is answered as
// usual, with 200. A GET of such a key itself answers 500 with the reason.
const HeaderUnreadable = "X-Ooo-Unreadable"

// maxLoggedKeys bounds the keys named in one log line about unreadable records.
const maxLoggedKeys = 10

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
	s.reportUnreadable(w, "")
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
		if errors.Is(err, ErrCorrupt) {
			s.logger().Warn("ooo: read of an unreadable record", "key", k, "err", err)
		}
		httpError(w, statusOf(err), err)
		return
	}
	if !found {
		httpError(w, http.StatusNotFound, ErrEmptyKey)
		return
	}
	if key.IsGlob(k) {
		s.reportUnreadable(w, k)
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
// the empty object, and the read filter (and Static) apply. It is the read of a join
// (a client's first snapshot), made for that client, so it calls BeforeRead.
func (s *Server) readForStream(k string) ([]byte, error) {
	return s.streamValue(k, s.Storage.Get)
}

// readForBroadcast is readForStream for the re-read of a broadcast, which follows a
// change the storage already holds: it does not call BeforeRead (storage.GetQuiet), so
// a hook that refreshes data before client reads (pivot's sync-on-read) is not run by
// the server's own broadcasts. A storage that does not implement storage.QuietReader
// is read with Get, hook included.
func (s *Server) readForBroadcast(k string) ([]byte, error) {
	return s.streamValue(k, func(k string) ([]byte, error) { return storage.GetQuiet(s.Storage, k) })
}

// streamValue reads k with get as websocket clients get it (see readForStream).
func (s *Server) streamValue(k string, get func(string) ([]byte, error)) ([]byte, error) {
	if err := s.canRead(k); err != nil {
		return nil, err
	}
	raw, found, err := readWith(get, k)
	if err != nil {
		return nil, err
	}
	if !found {
		raw = []byte(meta.EmptyObject)
	}
	return s.readFilter(k, raw)
}

// read reads k from the storage, unfiltered, calling BeforeRead. found is false for a
// missing (or empty) single key; a glob is always found, its list possibly empty.
func (s *Server) read(k string) (raw []byte, found bool, err error) {
	return readWith(s.Storage.Get, k)
}

// readWith is read with the storage read get.
func readWith(get func(string) ([]byte, error), k string) (raw []byte, found bool, err error) {
	raw, err = get(k)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return raw, len(raw) > 0 || key.IsGlob(k), nil
}

// reportUnreadable sets HeaderUnreadable and logs when the storage holds unreadable
// records matching pattern, which the list just read left out. It costs nothing when
// the storage found none.
func (s *Server) reportUnreadable(w http.ResponseWriter, pattern string) {
	d, ok := s.Storage.(storage.DamageReporter)
	if !ok {
		return
	}
	keys, err := d.Damaged(pattern)
	if err != nil || len(keys) == 0 {
		return
	}
	w.Header().Set(HeaderUnreadable, strconv.Itoa(len(keys)))
	s.logger().Warn("ooo: list read left out unreadable records", "path", pattern,
		"count", len(keys), "keys", keys[:min(len(keys), maxLoggedKeys)])
}
