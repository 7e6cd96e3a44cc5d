package pivot

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// splitAddress reads an instance's address: "host:port", or a URL "http://host:port"
// or "https://host:port" (a trailing "/" allowed, nothing else after the port). It
// returns the scheme ("" when the address has none: then Config.TLS decides) and the
// "host:port", which is what names a node.
func splitAddress(s string) (scheme, hostport string, err error) {
	rest := s
	if sch, after, ok := strings.Cut(s, "://"); ok {
		if sch != "http" && sch != "https" {
			return "", "", fmt.Errorf("%q: the scheme must be http or https", s)
		}
		scheme, rest = sch, strings.TrimSuffix(after, "/")
	}
	hostport, err = parseHostPort(rest)
	return scheme, hostport, err
}

// A node names itself on every request in HeaderNode, and the pivot matches that name
// to the addresses under NodesKey. The pivot uses the match for the node's status
// (last contact, lag) and to skip triggers the node does not need (see nodeView). A
// request the pivot cannot match is served as usual: the node is then triggered after
// every change, as if the pivot knew nothing about what it holds.

// nodeID returns what this node sends in HeaderNode: Config.Advertise when set, else the
// address its server listens on (ooo.Server.Address), which is known once the server
// is started; "" before that. Safe for concurrent use.
func (e *engine) nodeID() string {
	if e.cfg.Advertise != "" {
		return e.cfg.Advertise
	}
	if id := e.listenAddr.Load(); id != nil {
		return *id
	}
	// Start sets Address before it marks the server active, so reading Address after
	// Active reported true does not race with Start.
	if e.server == nil || !e.server.Active() {
		return ""
	}
	addr := e.server.Address
	e.listenAddr.Store(&addr)
	return addr
}

// identify returns the known node that sent r, or nil when r carries no HeaderNode or
// names no node under NodesKey. A name matches a NodesKey address when both are the
// same host:port, after two substitutions:
//   - an unspecified host ("0.0.0.0:8080" or "[::]:8080", the Address of a server
//     started on ":8080") is replaced by the IP the request came from;
//   - loopback names ("localhost", 127.0.0.0/8, "::1") are one host, when exactly one
//     known node has a loopback address on that port.
//
// Anything else (host names against IPs, proxies) does not match: set Config.Advertise
// on the node to its NodesKey address to be sure.
func (h *hub) identify(r *http.Request) *remoteNode {
	name := r.Header.Get(HeaderNode)
	if name == "" {
		return nil
	}
	_, addr, err := splitAddress(name)
	if err != nil {
		return nil
	}
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		remote, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return nil
		}
		host, addr = remote, net.JoinHostPort(remote, port)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := h.nodes[addr]; n != nil {
		return n
	}
	if !isLoopback(host) {
		return nil
	}
	var found *remoteNode
	for a, n := range h.nodes {
		if hh, pp, err := net.SplitHostPort(a); err == nil && pp == port && isLoopback(hh) {
			if found != nil {
				return nil // two loopback nodes on one port: ambiguous
			}
			found = n
		}
	}
	return found
}

// isLoopback reports whether host names this machine's loopback interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
