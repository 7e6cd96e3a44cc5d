package pivot

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/benitogf/pivot/ooo"
)

func TestHub_Identify(t *testing.T) {
	e := newEngine(Config{}.withDefaults(), "", nil, http.DefaultClient)
	defer e.close()
	h := e.pivotRole
	node := func(addr string) *remoteNode {
		rn := &remoteNode{addr: addr, pending: map[string]struct{}{}}
		h.nodes[addr] = rn
		return rn
	}
	local, lan, named := node("127.0.0.1:8080"), node("10.0.0.5:9000"), node("node.example:7000")

	cases := []struct {
		name, header, remote string
		want                 *remoteNode
	}{
		{"exact", "127.0.0.1:8080", "127.0.0.1:5555", local},
		{"host name", "node.example:7000", "10.0.0.9:5555", named},
		{"localhost is loopback", "localhost:8080", "127.0.0.1:5555", local},
		{"ipv6 loopback", "[::1]:8080", "[::1]:5555", local},
		{"unspecified ipv4 host: the request's IP", "0.0.0.0:9000", "10.0.0.5:5555", lan},
		{"unspecified ipv6 host: the request's IP", "[::]:9000", "10.0.0.5:5555", lan},
		{"unspecified host from elsewhere", "0.0.0.0:9000", "10.0.0.6:5555", nil},
		{"other port", "127.0.0.1:8081", "127.0.0.1:5555", nil},
		{"unknown", "10.0.0.7:9000", "10.0.0.7:5555", nil},
		{"no header", "", "127.0.0.1:5555", nil},
		{"not host:port", "node.example", "10.0.0.9:5555", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if tc.header != "" {
				r.Header.Set(HeaderNode, tc.header)
			}
			if got := h.identify(r); got != tc.want {
				t.Fatalf("identify(%q from %s) = %v, want %v", tc.header, tc.remote, got, tc.want)
			}
		})
	}

	t.Run("two loopback nodes on one port are ambiguous", func(t *testing.T) {
		other := node("127.0.0.2:8080")
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set(HeaderNode, "localhost:8080")
		if got := h.identify(r); got != nil {
			t.Fatalf("ambiguous loopback name matched %v", got.addr)
		}
		r.Header.Set(HeaderNode, "127.0.0.2:8080")
		if got := h.identify(r); got != other {
			t.Fatal("an exact address still matches")
		}
	})
}

func TestEngine_NodeID(t *testing.T) {
	t.Run("Advertise when set", func(t *testing.T) {
		e := newEngine(Config{Advertise: "node.example:80", NodesKey: "things/*"}.withDefaults(), "127.0.0.1:1", nil, http.DefaultClient)
		if got := e.nodeID(); got != "node.example:80" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("else the server's address once started", func(t *testing.T) {
		server := &ooo.Server{Silence: true}
		e := newEngine(Config{}.withDefaults(), "127.0.0.1:1", nil, http.DefaultClient)
		e.server = server
		if got := e.nodeID(); got != "" {
			t.Fatalf("before Start: got %q", got)
		}
		if err := server.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		defer server.Close(nil)
		if got := e.nodeID(); got != server.Address || got == "" {
			t.Fatalf("after Start: got %q, want %q", got, server.Address)
		}
	})
}
