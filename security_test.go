package pivot_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcert"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// protocolCall is one request to a protocol route, as a peer would make it.
type protocolCall struct {
	name   string
	in     *instance
	method string
	route  string
	query  url.Values
	body   []byte
}

// signed builds c's request to its instance, signed with cfg, naming node (""
// for none).
func (c protocolCall) signed(t testing.TB, cfg pivot.Config, node string) *http.Request {
	t.Helper()
	u := "http://" + c.in.addr + pivot.DefaultRoutePrefix + c.route
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	req, err := http.NewRequest(c.method, u, nil)
	require.NoError(t, err)
	if node != "" {
		req.Header.Set(pivot.HeaderNode, node)
	}
	require.NoError(t, pivot.SignRequest(req, c.body, cfg))
	return req
}

// sendWith sends req with body (which may differ from what was signed) and returns
// the status, the answer's header and its body.
func sendWith(t testing.TB, req *http.Request, body []byte) (int, http.Header, string) {
	t.Helper()
	r := req.Clone(req.Context())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if body == nil {
		r.Body = http.NoBody
	}
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(raw)
}

// digests is the state digest of every instance, to tell that nothing changed.
func digests(t testing.TB, insts []*instance) string {
	t.Helper()
	var b strings.Builder
	for _, in := range insts {
		d := stateDigest(t, in.db, syncedPaths, false)
		fmt.Fprintf(&b, "%s=%s ", in.name, hex.EncodeToString(d[:]))
	}
	return b.String()
}

// securityCluster is a pivot and two nodes whose config also names a previous secret
// that is already retired (its overlap is one nanosecond), holding some data.
func securityCluster(t *testing.T) (*cluster, pivot.Config) {
	cfg := testConfig()
	cfg.PreviousToken = "retired-secret-0123456789"
	cfg.TokenOverlap = time.Nanosecond
	c := startCluster(t, memoryKind, 2, cfg)
	set(t, c.pivot, "users/a", `{"name":"<b>ana</b>","n":12345678901234567890}`)
	set(t, c.nodes[0], "users/b", `{"name":"bé"}`)
	set(t, c.nodes[1], "settings", `{"theme":"dark"}`)
	waitConverged(t, c.all(), false)
	return c, cfg
}

// protocolCalls lists a harmless, valid request to every protocol route: accepted,
// none changes any data.
func protocolCalls(t *testing.T, c *cluster) []protocolCall {
	p, node := c.pivot, c.nodes[0]
	users := url.Values{"key": {"users/*"}}
	same := applyBody(t, entry(t, p, "users/a")) // already held: superseded
	return []protocolCall{
		{"changes", p, http.MethodGet, "/changes", url.Values{"key": {"users/*"}, "since": {"0"}}, nil},
		{"apply", p, http.MethodPost, "/apply", users, []byte(same)},
		{"digest", p, http.MethodGet, "/digest", users, nil},
		{"tree", p, http.MethodGet, "/tree", url.Values{"key": {"users/*"}, "prefix": {""}}, nil},
		{"entries", p, http.MethodPost, "/entries", users, []byte(`{"keys":["users/a"]}`)},
		{"writer", p, http.MethodPost, "/writer", nil, []byte(`{"token":"security-test","instance":4000}`)},
		{"trigger", node, http.MethodPost, "/trigger", nil, []byte(`{"keys":["users/*"]}`)},
		{"status", p, http.MethodGet, "/status", nil, nil},
	}
}

// Issue 10, item 6: every protocol route refuses a request without a proof, with a
// wrong or retired secret, replayed, altered after signing (body, route, query, sender's
// name) or too large, and the data of every instance is unchanged.
func TestSecurity_EveryRouteRefusesForgedReplayedAndAlteredRequests(t *testing.T) {
	c, cfg := securityCluster(t)
	before := digests(t, c.all())
	wrong := cfg
	wrong.Token = "wrong-secret-0123456789"
	retired := cfg
	retired.Token = cfg.PreviousToken
	node1, node2 := c.nodes[0].addr, c.nodes[1].addr

	for _, call := range protocolCalls(t, c) {
		t.Run(call.name, func(t *testing.T) {
			refused := func(what string, status int, body string, want int, says string) {
				t.Helper()
				require.Equal(t, want, status, "%s: answer %s", what, body)
				var eb struct{ Error string }
				require.NoError(t, json.Unmarshal([]byte(body), &eb), "%s: error body %q", what, body)
				require.True(t, strings.Contains(eb.Error, says), "%s: the message says %q: %s", what, says, body)
				require.True(t, !strings.Contains(body, cfg.Token), "%s: the secret never appears in an answer", what)
			}

			req := call.signed(t, cfg, node1)
			req.Header.Del(pivot.HeaderSignature)
			status, _, body := sendWith(t, req, call.body)
			refused("no proof", status, body, 401, "missing")

			status, _, body = sendWith(t, call.signed(t, wrong, node1), call.body)
			refused("wrong secret", status, body, 401, "does not match")

			status, _, body = sendWith(t, call.signed(t, retired, node1), call.body)
			refused("retired secret", status, body, 401, "retired")

			req = call.signed(t, cfg, node1)
			status, header, body := sendWith(t, req, call.body)
			require.True(t, status < 300, "the genuine request is served: %d %s", status, body)
			require.NoError(t, pivot.VerifyAnswer(req, status, header, []byte(body), cfg), "the answer is signed")
			status, _, body = sendWith(t, req, call.body)
			refused("replayed", status, body, 401, "replayed")

			altered := append(append([]byte(nil), call.body...), ' ')
			status, _, body = sendWith(t, call.signed(t, cfg, node1), altered)
			refused("body altered after signing", status, body, 401, "does not match")

			other := protocolCall{in: call.in, method: call.method, route: "/status"}
			if call.route == "/status" {
				other.route = "/digest"
			}
			req = other.signed(t, cfg, node1)
			req.URL.Path = pivot.DefaultRoutePrefix + call.route
			req.URL.RawQuery = call.query.Encode()
			status, _, body = sendWith(t, req, call.body)
			refused("signed for another route", status, body, 401, "does not match")

			if len(call.query) > 0 {
				req = call.signed(t, cfg, node1)
				q := req.URL.Query()
				q.Set("key", "settings")
				req.URL.RawQuery = q.Encode()
				status, _, body = sendWith(t, req, call.body)
				refused("query altered after signing", status, body, 401, "does not match")
			}

			req = call.signed(t, cfg, node1)
			req.Header.Set(pivot.HeaderNode, node2)
			status, _, body = sendWith(t, req, call.body)
			refused("sender's name altered after signing", status, body, 401, "does not match")

			huge := bytes.Repeat([]byte("x"), int(pivot.DefaultMaxBodyBytes)+1)
			status, _, body = sendWith(t, call.signed(t, cfg, node1), huge)
			refused("oversized body", status, body, 413, "exceeds")
		})
	}
	require.Equal(t, before, digests(t, c.all()), "no instance's data changed")
}

// Issue 10, item 6: a body that stops arriving is cut after RequestTimeout with 408,
// on every route at once, and holds up nothing meanwhile.
func TestSecurity_SlowBodiesAreCutAndHoldNothingUp(t *testing.T) {
	c, cfg := securityCluster(t)
	before := digests(t, c.all())
	calls := protocolCalls(t, c)
	answers := make(chan string, len(calls))
	for _, call := range calls {
		conn, err := net.Dial("tcp", call.in.addr)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		req := call.signed(t, cfg, "")
		var head strings.Builder
		fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n", call.method, req.URL.RequestURI(), call.in.addr)
		for k, v := range req.Header {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v[0])
		}
		head.WriteString("\r\n{\"keys\":[") // and then nothing: the rest never comes
		_, err = io.WriteString(conn, head.String())
		require.NoError(t, err)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				answers <- call.name + ": " + err.Error()
				return
			}
			resp.Body.Close()
			answers <- fmt.Sprintf("%s: %d", call.name, resp.StatusCode)
		}()
	}
	// Meanwhile the cluster serves and syncs as usual.
	set(t, c.nodes[0], "users/during", `{"slow":"bodies"}`)
	waitConverged(t, c.all(), false)
	deadline := time.After(cfg.RequestTimeout + waitTimeout)
	for range calls {
		select {
		case a := <-answers:
			require.True(t, strings.HasSuffix(a, ": 408"), "a stalled body gets 408: %s", a)
		case <-deadline:
			t.Fatal("a stalled body was not cut")
		}
	}
	require.True(t, before != digests(t, c.all()), "the write made meanwhile is everywhere")
}

// Issue 10, case 1: an address anybody registered under NodesKey (ooo's routes are
// open, as in most programs) receives the pivot's triggers, and nothing in them is of
// use: the secret is not in them, they cannot be sent again, nor turned into another
// request.
func TestSecurity_AHostileRegistrationLearnsNothing(t *testing.T) {
	cfg := testConfig()
	c := startCluster(t, memoryKind, 1, cfg)
	captured := make(chan *http.Request, 16)
	bodies := make(chan []byte, 16)
	hostile := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case captured <- r.Clone(r.Context()):
			bodies <- b
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = hostile.Serve(ln) }()
	t.Cleanup(func() { hostile.Close() })

	// Registered anonymously over ooo's own REST route.
	resp, err := http.Post("http://"+c.pivot.addr+"/things/hostile", "application/json",
		strings.NewReader(fmt.Sprintf(`{"ip":%q}`, ln.Addr().String())))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the anonymous registration is stored")
	set(t, c.pivot, "users/secret-plans", `{"p":1}`)
	var trig *http.Request
	var body []byte
	select {
	case trig = <-captured:
		body = <-bodies
	case <-time.After(waitTimeout):
		t.Fatal("the hostile address got no trigger")
	}
	for k, vs := range trig.Header {
		for _, v := range vs {
			require.True(t, !strings.Contains(v, cfg.Token), "header %s carries the secret", k)
		}
	}
	require.True(t, !bytes.Contains(body, []byte(cfg.Token)), "the body carries the secret: %s", body)

	// Sent again, to the pivot, on every route it could be turned into.
	waitConverged(t, c.all(), false)
	before := digests(t, c.all())
	tomb, err := json.Marshal(map[string]any{"entries": []storage.Entry{{Key: "users/secret-plans", Updated: time.Now().UnixNano(), Deleted: true}}})
	require.NoError(t, err)
	for _, target := range []struct {
		route string
		query string
		body  []byte
	}{
		{"/trigger", "", body},
		{"/apply", "key=users%2F%2A", tomb},
		{"/apply", "key=users%2F%2A", body},
		{"/changes", "key=users%2F%2A&since=0", nil},
	} {
		u := "http://" + c.pivot.addr + pivot.DefaultRoutePrefix + target.route
		if target.query != "" {
			u += "?" + target.query
		}
		req, err := http.NewRequest(http.MethodPost, u, nil)
		require.NoError(t, err)
		req.Header = trig.Header.Clone()
		status, _, answer := sendWith(t, req, target.body)
		require.True(t, status == 401 || status == 405 || status == 409, "the captured proof used on %s: %d %s", target.route, status, answer)
		require.True(t, status != 200 && status != 202, "never served")
	}
	require.Equal(t, before, digests(t, c.all()), "nothing changed")

	// The hostile address answers without a signature: the pivot counts failures,
	// and soon dials it only rarely.
	eventually(t, waitTimeout, func() bool {
		for _, n := range c.pivot.result.Status().Nodes {
			if n.Address == ln.Addr().String() {
				return n.ConsecutiveFailures > 0 && strings.Contains(n.LastError, pivot.HeaderSignature)
			}
		}
		return false
	}, "the unsigned answer counts as a failure: %+v", c.pivot.result.Status().Nodes)
}

// Issue 10, case 2: a holder of the secret pulls and pushes under another node's name.
// The pivot's bookkeeping for that name is then wrong, but the real node still gets
// the entry, at the first round after its own next write, not never.
func TestSecurity_ASpoofedNameCannotHideAnEntry(t *testing.T) {
	cfg := testConfig()
	cfg.ReadBudget = -1 // reads do not pull: only the node's own round can bring the entry
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", cfg)
	node2 := startInstance(t, "node2", memoryKind.make(t), "", p.addr, cfg)
	p.register(node2)
	set(t, p, "users/seed", `{"s":1}`)
	waitConverged(t, []*instance{p, node2}, false)
	set(t, node2, "users/mine", `{"m":1}`) // the pivot holds a view of node2 from here
	waitConverged(t, []*instance{p, node2}, false)

	// The liar, naming itself node2: a pull to the head, then a push.
	liar := protocolCall{in: p, method: http.MethodGet, route: "/changes", query: url.Values{"key": {"users/*"}, "since": {"0"}, "limit": {"10000"}}}
	status, _, body := sendWith(t, liar.signed(t, cfg, node2.addr), nil)
	require.Equal(t, 200, status, body)
	spoof := storage.Entry{Key: "users/spoofed", Created: time.Now().UnixNano(), Data: json.RawMessage(`{"from":"the liar"}`)}
	push := protocolCall{in: p, method: http.MethodPost, route: "/apply", query: url.Values{"key": {"users/*"}}, body: []byte(applyBody(t, spoof))}
	status, _, body = sendWith(t, push.signed(t, cfg, node2.addr), push.body)
	require.Equal(t, 200, status, body)

	// The real node2 writes once; its round brings the spoofed entry along.
	set(t, node2, "users/after", `{"a":1}`)
	eventually(t, waitTimeout, func() bool { return state(t, node2.db, []string{"users/*"}, true)["users/spoofed"] != "" },
		"node2 received the entry pushed under its name")
	waitConverged(t, []*instance{p, node2}, false)
}

// mutualTLS is the TLS config of an instance with cert, trusting ca both ways and
// requiring client certificates.
func mutualTLS(ca *testcert.CA, cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca.Pool, ClientCAs: ca.Pool,
		ClientAuth: tls.RequireAndVerifyClientCert}
}

// Issue 10, case 3: with Config.TLS, a node registers an https:// address, the pivot's
// triggers reach it over TLS, and writes flow both ways; under mutual TLS a node's
// certificate must name the address it names itself by.
func TestSecurity_TLSBothWays(t *testing.T) {
	ca, err := testcert.NewCA()
	require.NoError(t, err)
	pcert, err := ca.Leaf("127.0.0.1")
	require.NoError(t, err)
	ncert, err := ca.Leaf("127.0.0.1")
	require.NoError(t, err)
	pcfg := testConfig()
	pcfg.TLS = mutualTLS(ca, pcert)
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", pcfg)

	naddr := freeAddr(t)
	ncfg := testConfig()
	ncfg.TLS = mutualTLS(ca, ncert)
	ncfg.Advertise = "https://" + naddr
	ncfg.ReadBudget = -1 // only triggers (or the node's own writes) make it sync
	node := startInstance(t, "node", memoryKind.make(t), naddr, p.addr, ncfg)

	eventually(t, waitTimeout, func() bool {
		for _, n := range p.result.Status().Nodes {
			if n.Address == naddr && n.LastContact.After(time.Time{}) && n.ConsecutiveFailures == 0 {
				return true
			}
		}
		return false
	}, "the pivot knows the node by its https address: %+v", p.result.Status().Nodes)
	set(t, p, "users/over-tls", `{"from":"pivot"}`)
	eventually(t, waitTimeout, func() bool { return state(t, node.db, []string{"users/*"}, true)["users/over-tls"] != "" },
		"the pivot's trigger reached the node over TLS: %+v", p.result.Status().Nodes)
	set(t, node, "users/back", `{"from":"node"}`)
	eventually(t, waitTimeout, func() bool { return state(t, p.db, []string{"users/*"}, true)["users/back"] != "" },
		"the node's write reached the pivot over TLS")

	// Plain HTTP, or TLS without a client certificate, gets nothing.
	if resp, err := http.Get("http://" + naddr + pivot.DefaultRoutePrefix + "/status"); err == nil {
		resp.Body.Close()
		require.True(t, resp.StatusCode >= 400, "plain HTTP to the node: %s", resp.Status)
	}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
	if resp, err := anon.Get("https://" + p.addr + "/users/over-tls"); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate was served: %s", resp.Status)
	}

	// A node whose certificate names another host is refused (403) and syncs nothing.
	other, err := ca.Leaf("10.9.9.9")
	require.NoError(t, err)
	lcfg := testConfig()
	lcfg.TLS = mutualTLS(ca, other)
	liar := startInstance(t, "liar", memoryKind.make(t), "", p.addr, lcfg)
	set(t, liar, "users/from-liar", `{"x":1}`)
	eventually(t, waitTimeout, func() bool {
		return strings.Contains(liar.result.Status().LastError, "403")
	}, "the node with the wrong certificate is refused: %+v", liar.result.Status())
	require.True(t, state(t, p.db, []string{"users/*"}, true)["users/from-liar"] == "", "its write did not reach the pivot")
	require.True(t, errors.Is(liar.result.Status().LastErr, pivot.ErrUnauthorized), "Status.LastErr is ErrUnauthorized: %v", liar.result.Status().LastErr)
	var re *pivot.RemoteError
	require.True(t, errors.As(liar.result.Status().LastErr, &re) && re.Status == http.StatusForbidden, "a *RemoteError with the status: %v", liar.result.Status().LastErr)
}

// Issue 10, case 4: a running cluster moves to a new secret one instance at a time,
// with writes in flight on every instance; nothing is lost, and the old secret stays
// accepted for the overlap.
func TestSecurity_RotationLosesNothing(t *testing.T) {
	cfg := testConfig()
	cfg.Token = "first-secret-0123456789"
	c := startCluster(t, memoryKind, 2, cfg)
	waitConverged(t, c.all(), false)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	written := make([]atomic.Int64, len(c.all()))
	errs := make(chan error, len(c.all()))
	for i, in := range c.all() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(2 * time.Millisecond) // pacing, not synchronisation
			defer tick.Stop()
			for n := 0; n < 5000; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := in.db.Set(fmt.Sprintf("users/%s-%04d", in.name, n), json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))); err != nil {
					errs <- err
					return
				}
				written[i].Add(1)
			}
		}()
	}
	const next = "second-secret-0123456789"
	for _, in := range c.all() {
		require.NoError(t, in.result.RotateToken(next), "rotate %s", in.name)
		// The cluster keeps syncing, half rotated: a write made now reaches everyone.
		marker := "users/marker-" + in.name
		set(t, in, marker, `{"rotated":true}`)
		for _, other := range c.all() {
			eventually(t, waitTimeout, func() bool { return state(t, other.db, []string{"users/*"}, true)[marker] != "" },
				"%s's write after its rotation reached %s", in.name, other.name)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitConverged(t, c.all(), false)
	for i, in := range c.all() {
		require.True(t, written[i].Load() > 0, "%s wrote during the rotation", in.name)
		held := state(t, c.nodes[1].db, []string{"users/*"}, true)
		for n := range int(written[i].Load()) {
			k := fmt.Sprintf("users/%s-%04d", in.name, n)
			require.True(t, held[k] != "", "%s's write %s is everywhere", in.name, k)
		}
	}
	for _, token := range []string{cfg.Token, next} {
		old := cfg
		old.Token = token
		call := protocolCall{in: c.pivot, method: http.MethodGet, route: "/status"}
		status, _, body := sendWith(t, call.signed(t, old, ""), nil)
		require.Equal(t, http.StatusOK, status, "a request signed with %q during the overlap: %s", token, body)
	}
	require.NoError(t, c.pivot.result.RotateToken(next), "rotating to the current token is a no-op")
	require.True(t, errors.Is(c.pivot.result.RotateToken(""), pivot.ErrInvalidConfig), "an empty token is refused")
}

// Issue 10, item 5: a registration the pivot cannot reach is dialled a bounded number
// of times, then rarely, and its status says so; once the node is up and syncs, it is
// dialled as usual again.
func TestSecurity_AnUnreachableRegistrationIsDialledRarely(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", cfg)
	addr := freeAddr(t)
	_, err := p.db.Set("things/gone", json.RawMessage(fmt.Sprintf(`{"ip":%q}`, addr)))
	require.NoError(t, err)
	nodeStatus := func() pivot.NodeStatus {
		for _, n := range p.result.Status().Nodes {
			if n.Address == addr {
				return n
			}
		}
		return pivot.NodeStatus{}
	}
	// A failed trigger is queued again after backoff: no more writes are needed.
	set(t, p, "users/tick", `{"i":1}`)
	eventually(t, waitTimeout, func() bool { return nodeStatus().Dormant }, "dormant: %+v", nodeStatus())
	st := nodeStatus()
	require.Equal(t, 10, st.ConsecutiveFailures, "dormant after 10 failures: %+v", st)
	require.True(t, time.Until(st.NextTrigger) > 4*time.Minute, "next dialled in about 5 minutes: %+v", st)
	set(t, p, "users/while-dormant", `{"d":1}`)
	require.Equal(t, 10, nodeStatus().ConsecutiveFailures, "a change does not dial a dormant node")

	node := startInstance(t, "node", memoryKind.make(t), addr, p.addr, cfg)
	eventually(t, waitTimeout, func() bool { return !nodeStatus().Dormant && nodeStatus().ConsecutiveFailures == 0 },
		"the node's own sync wakes it: %+v", nodeStatus())
	set(t, p, "users/after", `{"a":1}`)
	eventually(t, waitTimeout, func() bool { return state(t, node.db, []string{"users/*"}, true)["users/after"] != "" },
		"and it is triggered again")
	require.Empty(t, nodeStatus().LastError, "a node that answers again shows no stale error")
}

// Issue 10, item 5: with ProtectNodesKey, as the examples set it up, an anonymous
// client can neither add, change nor remove a node over REST, an operator with the
// credential can, and nodes still register themselves.
func TestSecurity_ProtectNodesKeyRefusesAnonymousRegistrations(t *testing.T) {
	cfg := testConfig()
	server := &ooo.Server{Silence: true, Storage: memoryKind.make(t)}
	pivot.ProtectNodesKey(server, cfg.NodesKey, pivot.BearerAllows("operator-credential"))
	p := startServer(t, "pivot", server, "", cfg)
	naddr := freeAddr(t)
	ncfg := cfg
	ncfg.Advertise = naddr
	nodeServer := &ooo.Server{Silence: true, Storage: memoryKind.make(t), Pivot: p.addr}
	pivot.ProtectNodesKey(nodeServer, cfg.NodesKey, nil)
	node := startServer(t, "node", nodeServer, naddr, ncfg)
	// Wait for the entry itself: a node with its stream open is in Status before it.
	eventually(t, waitTimeout, func() bool { return len(state(t, p.db, []string{"things/*"}, true)) == 1 }, "the node registered itself")
	waitConverged(t, []*instance{p, node}, false)
	before := digests(t, []*instance{p, node})

	rest := func(in *instance, method, path, body, auth string) int {
		req, err := http.NewRequest(method, "http://"+in.addr+path, strings.NewReader(body))
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	var entryPath string
	for k := range state(t, p.db, []string{"things/*"}, true) {
		entryPath = "/" + k
	}
	for _, in := range []*instance{p, node} {
		for _, tc := range []struct{ method, path, body string }{
			{http.MethodPost, "/things/*", `{"ip":"127.0.0.1:9"}`},
			{http.MethodPost, "/things/evil", `{"ip":"127.0.0.1:9"}`},
			{http.MethodPut, entryPath, `{"ip":"127.0.0.1:9"}`},
			{http.MethodPatch, entryPath, `{"ip":"127.0.0.1:9"}`},
			{http.MethodDelete, entryPath, ""},
			{http.MethodDelete, "/things/*", ""},
		} {
			require.Equal(t, http.StatusUnauthorized, rest(in, tc.method, tc.path, tc.body, ""), "anonymous %s %s on %s", tc.method, tc.path, in.name)
			require.Equal(t, http.StatusUnauthorized, rest(in, tc.method, tc.path, tc.body, "guess"), "wrong credential %s %s on %s", tc.method, tc.path, in.name)
		}
	}
	require.Equal(t, before, digests(t, []*instance{p, node}), "no registration changed")
	require.Equal(t, http.StatusOK, rest(p, http.MethodGet, "/things/*", "", ""), "reads stay open")
	require.Equal(t, http.StatusOK, rest(p, http.MethodPost, "/users/*", `{"u":1}`, ""), "other keys stay open")
	require.Equal(t, http.StatusOK, rest(p, http.MethodPost, "/things/added", fmt.Sprintf(`{"ip":%q}`, freeAddr(t)), "operator-credential"), "the operator registers a node")
	eventually(t, waitTimeout, func() bool { return len(p.result.Status().Nodes) == 2 }, "the pivot knows the operator's node")
}
