package ooo

import (
	"net/http"
	"strings"
)

// corsPolicy answers CORS preflights and marks cross-origin responses, per the
// Allowed*/Exposed* fields of the Server.
type corsPolicy struct {
	anyOrigin bool
	origins   []string // exact origins, or patterns with one '*'
	methods   []string // upper case
	headers   []string // canonical header names
	exposed   string
}

func newCORSPolicy(origins, methods, headers, exposed []string) corsPolicy {
	p := corsPolicy{exposed: strings.Join(exposed, ", ")}
	for _, o := range origins {
		if o == "*" {
			p.anyOrigin = true
		}
		p.origins = append(p.origins, strings.ToLower(o))
	}
	for _, m := range methods {
		p.methods = append(p.methods, strings.ToUpper(m))
	}
	p.headers = append(p.headers, "Origin")
	for _, h := range headers {
		p.headers = append(p.headers, http.CanonicalHeaderKey(h))
	}
	return p
}

func (p corsPolicy) allowOrigin(origin string) bool {
	if p.anyOrigin {
		return true
	}
	origin = strings.ToLower(origin)
	for _, o := range p.origins {
		if i := strings.IndexByte(o, '*'); i >= 0 {
			if len(origin) >= len(o)-1 && strings.HasPrefix(origin, o[:i]) && strings.HasSuffix(origin, o[i+1:]) {
				return true
			}
		} else if o == origin {
			return true
		}
	}
	return false
}

func (p corsPolicy) allowMethod(m string) bool {
	m = strings.ToUpper(m)
	if m == http.MethodOptions {
		return true
	}
	for _, a := range p.methods {
		if a == m {
			return true
		}
	}
	return false
}

// allowHeaders reports whether every header named in a comma-separated list is allowed.
func (p corsPolicy) allowHeaders(list string) bool {
	for _, h := range strings.Split(list, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		h = http.CanonicalHeaderKey(h)
		ok := false
		for _, a := range p.headers {
			if a == h {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (p corsPolicy) originValue(origin string) string {
	if p.anyOrigin {
		return "*"
	}
	return origin
}

// handle answers a preflight itself (true), or marks an actual cross-origin response
// and lets it through (false).
func (p corsPolicy) handle(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	h := w.Header()
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
		method := r.Header.Get("Access-Control-Request-Method")
		requested := r.Header.Get("Access-Control-Request-Headers")
		if origin != "" && p.allowOrigin(origin) && p.allowMethod(method) && p.allowHeaders(requested) {
			h.Set("Access-Control-Allow-Origin", p.originValue(origin))
			h.Set("Access-Control-Allow-Methods", strings.ToUpper(method))
			if requested != "" {
				h.Set("Access-Control-Allow-Headers", requested)
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	if origin != "" {
		h.Add("Vary", "Origin")
		if p.allowOrigin(origin) {
			h.Set("Access-Control-Allow-Origin", p.originValue(origin))
			if p.exposed != "" {
				h.Set("Access-Control-Expose-Headers", p.exposed)
			}
		}
	}
	return false
}
