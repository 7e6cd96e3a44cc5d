package pivot

import (
	"crypto/subtle"
	_ "embed"
	"net/http"
	"strings"
)

// statusPage is the status page: one self-contained HTML file, no external assets. It
// holds no data; its script reads Status from routeUIStatus with the ReadToken the
// operator types.
//
//go:embed ui/status.html
var statusPage []byte

// handleUI serves the status page. The page is the same for everybody and shows
// nothing until its data route accepts the operator's ReadToken.
func (e *syncEngine) handleUI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Inline script and style only, requests only to this origin, never framed.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(statusPage)
}

// handleUIStatus answers Status to a request carrying Config.ReadToken as a bearer
// credential: 404 when no ReadToken is configured, 401 without it.
func (e *syncEngine) handleUIStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, codeBadRequest, r.Method+" not allowed, use GET")
		return
	}
	want := e.cfg.ReadToken
	if want == "" {
		writeError(w, http.StatusNotFound, codeNotFound, "the status page's data is off: set Config.ReadToken")
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pivot status"`)
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "a valid read token is needed")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, e.status())
}
