package ooo

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
)

// serveSubscribe upgrades GET /<key> to a websocket subscription (see package stream).
func (s *Server) serveSubscribe(w http.ResponseWriter, r *http.Request, k string) {
	if !s.admit(w, r, k) {
		return
	}
	if err := s.canRead(k); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	read := s.readForStream
	if _, quiet := s.Storage.(storage.QuietReader); quiet && s.BeforeRead != nil {
		// The hook runs here, outside the pool's lock: a slow one (pivot's pull)
		// delays this client's join only, never the pool's broadcasts.
		s.BeforeRead(k)
		read = s.readForBroadcast
	}
	if err := s.Stream.Serve(w, r, k, read); err != nil {
		s.logger().Debug("ooo: subscription ended with an error", "key", k, "err", err)
	}
}

// serveClock upgrades GET / to the clock socket.
func (s *Server) serveClock(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	if err := s.Stream.ServeClock(w, r, s.now); err != nil {
		s.logger().Debug("ooo: clock socket ended with an error", "err", err)
	}
}

// Time returns the current wall-clock time as decimal Unix nanoseconds, the format of
// the clock socket and of ooo timestamps. (The clock socket itself never goes behind
// the storage's hybrid logical clock.)
func Time() string {
	return strconv.FormatInt(time.Now().UnixNano(), 10)
}

// streamsVerbatim reports whether the websocket clients of k get the storage's value of
// k as it is, which lets the stream patch k's pool from storage events alone
// (stream.Stream.Verbatim): no read filter other than NoopFilter (OpenFilter's) matches
// k, and no NoBroadcastKeys entry covers a key k covers (a write there emits no event,
// so only a re-read would see it).
func (s *Server) streamsVerbatim(k string) bool {
	if fn, ok := find(&s.filters, readRoutes, k); ok && !isNoopFilter(fn) {
		return false
	}
	for _, silent := range s.NoBroadcastKeys {
		if mayOverlap(silent, k) {
			return false
		}
	}
	return true
}

// noopFilterPointer identifies NoopFilter among registered read filters.
var noopFilterPointer = reflect.ValueOf(NoopFilter).Pointer()

// isNoopFilter reports whether fn is NoopFilter itself, which returns the data as it is.
func isNoopFilter(fn Apply) bool {
	return fn != nil && reflect.ValueOf(fn).Pointer() == noopFilterPointer
}

// mayOverlap reports whether some key could match both keys or globs a and b: the same
// number of segments, each pair equal or one of them holding a '*'. It may say true for
// globs that share no key ("a*" and "b*"), never false for globs that share one.
func mayOverlap(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if as[i] != bs[i] && !strings.Contains(as[i], "*") && !strings.Contains(bs[i], "*") {
			return false
		}
	}
	return true
}
