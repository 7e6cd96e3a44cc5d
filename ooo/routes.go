package ooo

import (
	"net/http"
	"path"
	"strings"

	"github.com/gorilla/mux"
	"github.com/gorilla/websocket"
)

// registerRoutes adds ooo's catch-all key route to the Router, once per Router, after
// every route already there. It runs under s.mu.
func (s *Server) registerRoutes() {
	if s.routed == s.Router {
		return
	}
	s.keyRoute = s.Router.PathPrefix("/").HandlerFunc(s.serveKey)
	s.routed = s.Router
}

// rootHandler is the HTTP server's handler: CORS, then compression (compression.go;
// websocket upgrades go without), then the Router. A path the Router would redirect to
// its cleaned form ("/a//b", "/a/./b") goes straight to the key handler, which refuses
// it with 400, unless a route of the user claims it.
func (s *Server) rootHandler() http.Handler {
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p != "" && cleanPath(p) != p {
			var m mux.RouteMatch
			if !s.Router.Match(r, &m) || m.Route == nil || m.Route == s.keyRoute {
				s.serveKey(w, r)
				return
			}
		}
		s.Router.ServeHTTP(w, r)
	})
	compressed := compression()(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.rt.Load().cors.handle(w, r) {
			return
		}
		if websocket.IsWebSocketUpgrade(r) {
			route(w, r)
			return
		}
		compressed(w, r)
	})
}

// cleanPath mirrors the path cleaning of gorilla/mux.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// serveKey dispatches every request of the catch-all key route.
func (s *Server) serveKey(w http.ResponseWriter, r *http.Request) {
	k := strings.TrimPrefix(r.URL.Path, "/")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		upgrade := websocket.IsWebSocketUpgrade(r)
		switch {
		case k == "" && upgrade:
			s.serveClock(w, r)
		case k == "":
			s.serveKeys(w, r)
		case upgrade:
			s.serveSubscribe(w, r, k)
		default:
			s.serveGet(w, r, k)
		}
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if rt := s.rt.Load(); rt != nil {
			rt.writes.ServeHTTP(w, r)
			return
		}
		s.serveWrite(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE")
		httpError(w, http.StatusMethodNotAllowed, ErrMethodNotAllowed)
	}
}
