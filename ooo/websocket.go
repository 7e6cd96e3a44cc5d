package ooo

import (
	"net/http"
	"strconv"
	"time"
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
	if err := s.Stream.Serve(w, r, k, s.readForStream); err != nil {
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
