package pivot_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/storage"
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
	noErr(t, err)
	if node != "" {
		req.Header.Set(pivot.HeaderNode, node)
	}
	noErr(t, pivot.SignRequest(req, c.body, cfg))
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
	noErr(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	noErr(t, err)
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
				equal(t, want, status, "%s: answer %s", what, body)
				var eb struct{ Error string }
				noErr(t, json.Unmarshal([]byte(body), &eb), "%s: error body %q", what, body)
				isTrue(t, strings.Contains(eb.Error, says), "%s: the message says %q: %s", what, says, body)
				isTrue(t, !strings.Contains(body, cfg.Token), "%s: the secret never appears in an answer", what)
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
			isTrue(t, status < 300, "the genuine request is served: %d %s", status, body)
			noErr(t, pivot.VerifyAnswer(req, status, header, []byte(body), cfg), "the answer is signed")
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
	equal(t, before, digests(t, c.all()), "no instance's data changed")
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
		noErr(t, err)
		t.Cleanup(func() { conn.Close() })
		req := call.signed(t, cfg, "")
		var head strings.Builder
		fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n", call.method, req.URL.RequestURI(), call.in.addr)
		for k, v := range req.Header {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v[0])
		}
		head.WriteString("\r\n{\"keys\":[") // and then nothing: the rest never comes
		_, err = io.WriteString(conn, head.String())
		noErr(t, err)
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
			isTrue(t, strings.HasSuffix(a, ": 408"), "a stalled body gets 408: %s", a)
		case <-deadline:
			t.Fatal("a stalled body was not cut")
		}
	}
	isTrue(t, before != digests(t, c.all()), "the write made meanwhile is everywhere")
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
	noErr(t, err)
	go func() { _ = hostile.Serve(ln) }()
	t.Cleanup(func() { hostile.Close() })

	// Registered anonymously over ooo's own REST route.
	resp, err := http.Post("http://"+c.pivot.addr+"/things/hostile", "application/json",
		strings.NewReader(fmt.Sprintf(`{"ip":%q}`, ln.Addr().String())))
	noErr(t, err)
	resp.Body.Close()
	equal(t, http.StatusOK, resp.StatusCode, "the anonymous registration is stored")
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
			isTrue(t, !strings.Contains(v, cfg.Token), "header %s carries the secret", k)
		}
	}
	isTrue(t, !bytes.Contains(body, []byte(cfg.Token)), "the body carries the secret: %s", body)

	// Sent again, to the pivot, on every route it could be turned into.
	waitConverged(t, c.all(), false)
	before := digests(t, c.all())
	tomb, err := json.Marshal(map[string]any{"entries": []storage.Entry{{Key: "users/secret-plans", Updated: time.Now().UnixNano(), Deleted: true}}})
	noErr(t, err)
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
		noErr(t, err)
		req.Header = trig.Header.Clone()
		status, _, answer := sendWith(t, req, target.body)
		isTrue(t, status == 401 || status == 405 || status == 409, "the captured proof used on %s: %d %s", target.route, status, answer)
		isTrue(t, status != 200 && status != 202, "never served")
	}
	equal(t, before, digests(t, c.all()), "nothing changed")

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
	equal(t, 200, status, body)
	spoof := storage.Entry{Key: "users/spoofed", Created: time.Now().UnixNano(), Data: json.RawMessage(`{"from":"the liar"}`)}
	push := protocolCall{in: p, method: http.MethodPost, route: "/apply", query: url.Values{"key": {"users/*"}}, body: []byte(applyBody(t, spoof))}
	status, _, body = sendWith(t, push.signed(t, cfg, node2.addr), push.body)
	equal(t, 200, status, body)

	// The real node2 writes once; its round brings the spoofed entry along.
	set(t, node2, "users/after", `{"a":1}`)
	eventually(t, waitTimeout, func() bool { return state(t, node2.db, []string{"users/*"}, true)["users/spoofed"] != "" },
		"node2 received the entry pushed under its name")
	waitConverged(t, []*instance{p, node2}, false)
}
