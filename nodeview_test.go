package pivot_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// exchange is one request of a recorded client, completed: its answer was read.
type exchange struct {
	sent   int64    // position of its sending among the events of the recorders' clock
	done   int64    // position of its completion
	host   string   // the host:port asked
	route  string   // the path after the route prefix: "/changes", "/trigger"...
	key    string   // the key parameter of a pull or push
	keys   []string // the keys of a trigger; nil for "every key"
	got    []string // the keys of the changes in a pull's answer
	status int
}

// recorder is a client transport that logs every exchange, in the order of a clock it
// may share with other recorders, and can hold the answer of the next trigger of one key
// to one host until released (the request itself goes through at once).
type recorder struct {
	clock *atomic.Int64
	inner http.RoundTripper

	mu      sync.Mutex
	log     []exchange
	gate    func(exchange) bool // matches the trigger whose answer is held; nil for none
	release chan struct{}       // closed to let a held answer through
}

func newRecorder(clock *atomic.Int64) *recorder {
	return &recorder{clock: clock, inner: http.DefaultTransport.(*http.Transport).Clone()}
}

func (r *recorder) client() *http.Client { return &http.Client{Transport: r} }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := exchange{sent: r.clock.Add(1), host: req.URL.Host,
		route: strings.TrimPrefix(req.URL.Path, pivot.DefaultRoutePrefix), key: req.URL.Query().Get("key")}
	if ex.route == "/trigger" && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var tr struct{ Keys []string }
		_ = json.Unmarshal(body, &tr)
		ex.keys = tr.Keys
	}
	resp, err := r.inner.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// The whole answer is read here, so the exchange is complete when it is logged.
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	ex.status = resp.StatusCode
	if ex.route == "/changes" {
		var answer struct{ Changes []struct{ Key string } }
		_ = json.Unmarshal(body, &answer)
		for _, c := range answer.Changes {
			ex.got = append(ex.got, c.Key)
		}
	}
	r.mu.Lock()
	var hold chan struct{}
	if r.gate != nil && r.gate(ex) {
		r.gate, hold = nil, r.release
	}
	ex.done = r.clock.Add(1)
	r.log = append(r.log, ex)
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return resp, nil
}

// holdNextTrigger makes the answer of the next trigger of key to host wait for the
// returned release function.
func (r *recorder) holdNextTrigger(host, key string) (release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gate, r.release = triggersTo(host, key), make(chan struct{})
	return sync.OnceFunc(func() { close(r.release) })
}

// find returns the exchanges that match.
func (r *recorder) find(match func(exchange) bool) []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []exchange
	for _, ex := range r.log {
		if match(ex) {
			out = append(out, ex)
		}
	}
	return out
}

// triggersTo matches the triggers to host that name key (or every key when key is "").
func triggersTo(host, key string) func(exchange) bool {
	return func(ex exchange) bool {
		if ex.route != "/trigger" || ex.host != host {
			return false
		}
		if key == "" {
			return ex.keys == nil
		}
		for _, k := range ex.keys {
			if k == key {
				return true
			}
		}
		return false
	}
}

// pullsOf matches the completed pulls of key.
func pullsOf(key string) func(exchange) bool {
	return func(ex exchange) bool { return ex.route == "/changes" && ex.key == key && ex.status == http.StatusOK }
}

// skipCluster is a pivot and nodes A and B whose clients are recorded, settled: the
// pivot has told each node to sync every key (which it does once, when it discovers
// the node), and each node has pulled users/* since, so the pivot knows what it holds.
// The nodes set no Advertise (the pivot knows them by the address their server
// listens on), read without pulling and run no periodic sync, so only a trigger makes
// them pull.
type skipCluster struct {
	pivot, a, b           *instance
	pivotRole, recA, recB *recorder
}

func startSkipCluster(t testing.TB) *skipCluster {
	t.Helper()
	var clock atomic.Int64
	c := &skipCluster{pivotRole: newRecorder(&clock), recA: newRecorder(&clock), recB: newRecorder(&clock)}
	cfg := testConfig()
	cfg.ReadBudget = -1
	pcfg := cfg
	pcfg.Client = c.pivotRole.client()
	c.pivot = startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", pcfg)
	acfg, bcfg := cfg, cfg
	acfg.Client, bcfg.Client = c.recA.client(), c.recB.client()
	c.a = startInstance(t, "A", &ooo.MemoryStorage{}, "", c.pivot.addr, acfg)
	c.b = startInstance(t, "B", &ooo.MemoryStorage{}, "", c.pivot.addr, bcfg)
	c.pivot.register(c.a)
	c.pivot.register(c.b)
	for _, node := range []struct {
		in  *instance
		rec *recorder
	}{{c.a, c.recA}, {c.b, c.recB}} {
		eventually(t, waitTimeout, func() bool {
			all := c.pivotRole.find(func(ex exchange) bool {
				return triggersTo(node.in.addr, "")(ex) && ex.status == http.StatusAccepted
			})
			if len(all) == 0 {
				return false
			}
			pulled := node.rec.find(pullsOf("users/*"))
			return len(pulled) > 0 && pulled[len(pulled)-1].sent > all[0].sent
		}, "%s is told to sync every key and pulls users/* after", node.in.name)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.logExchanges(t)
		}
	})
	return c
}

// logExchanges logs every recorded exchange, to explain a failure.
func (c *skipCluster) logExchanges(t testing.TB) {
	t.Logf("pivot %s, A %s, B %s", c.pivot.addr, c.a.addr, c.b.addr)
	for name, r := range map[string]*recorder{"pivot": c.pivotRole, "A": c.recA, "B": c.recB} {
		for _, ex := range r.find(func(exchange) bool { return true }) {
			t.Logf("%s: %+v", name, ex)
		}
	}
}

// holds reports whether in holds k with data.
func holds(t testing.TB, in *instance, k, data string) bool {
	t.Helper()
	return strings.HasSuffix(state(t, in.db, []string{"users/*"}, true)[k], "data="+data)
}

func TestTriggers_TheNodeThatPushedTheChangeIsNotTriggered(t *testing.T) {
	c := startSkipCluster(t)

	set(t, c.a, "users/a1", `"from A"`)
	eventually(t, waitTimeout, func() bool { return holds(t, c.b, "users/a1", `"from A"`) },
		"B receives A's write")
	eventually(t, waitTimeout, func() bool {
		return skipped(c.pivot, c.a.addr) > 0 || len(c.pivotRole.find(triggersTo(c.a.addr, "users/*"))) > 0
	}, "the pivot decides about A")

	require.Equal(t, 0, len(c.pivotRole.find(triggersTo(c.a.addr, "users/*"))), "triggers to A for users/*")
	require.True(t, skipped(c.pivot, c.a.addr) > 0, "skipped triggers reported for A")
	a := nodeStatus(t, c.pivot, c.a.addr)
	require.True(t, a.UpToDate && a.Lag == 0, "A, which holds every change, is reported up to date: %+v", a)
	eventually(t, waitTimeout, func() bool { return nodeStatus(t, c.pivot, c.b.addr).UpToDate },
		"B is reported up to date once it pulled")

	// The pivot's answer to the push told A that the feed holds nothing else, so A's
	// pull cursor moved past its own entry: no later pull fetches it back.
	_, head, err := c.pivot.db.(storage.Replica).Changes("users/*", 0, 1<<20)
	require.NoError(t, err)
	eventually(t, waitTimeout, func() bool { return pullCursor(c.a, "users/*") == head },
		"A's pull cursor moves to the head of the pivot's feed (%d), at %d", head, pullCursor(c.a, "users/*"))
	set(t, c.b, "users/b1", `"from B"`)
	eventually(t, waitTimeout, func() bool { return holds(t, c.a, "users/b1", `"from B"`) }, "A receives B's write")
	pushes := c.recA.find(func(ex exchange) bool { return ex.route == "/apply" && ex.key == "users/*" })
	require.Equal(t, 1, len(pushes), "A's pushes")
	for _, ex := range c.recA.find(pullsOf("users/*")) {
		if ex.sent > pushes[0].done {
			for _, k := range ex.got {
				require.True(t, k != "users/a1", "A pulled its own write back: %+v", ex)
			}
		}
	}
}

// pullCursor reads a node's persisted pull cursor of path.
func pullCursor(in *instance, path string) uint64 {
	for _, k := range in.result.Status().Keys {
		if k.Path == path {
			return k.PullCursor
		}
	}
	return 0
}

func TestTriggers_AChangeFromAnotherNodeDuringAPushStillReachesThePusher(t *testing.T) {
	// While a trigger to A is held, B's write and A's push both reach the pivot, in
	// either order; the trigger that follows must not be skipped, since A lacks B's
	// write.
	for _, order := range []string{"B then A", "A then B"} {
		t.Run(order, func(t *testing.T) {
			c := startSkipCluster(t)
			release := c.pivotRole.holdNextTrigger(c.a.addr, "users/*")
			t.Cleanup(release)

			// B's first write is pulled by A (the trigger went through, its answer is
			// held): A's sender at the pivot is now busy.
			set(t, c.b, "users/b1", `1`)
			eventually(t, waitTimeout, func() bool { return holds(t, c.a, "users/b1", `1`) }, "A pulls b1")

			writes := []struct {
				in      *instance
				k, data string
			}{{c.b, "users/b2", `2`}, {c.a, "users/a2", `"from A"`}}
			if order == "A then B" {
				writes[0], writes[1] = writes[1], writes[0]
			}
			for _, w := range writes {
				set(t, w.in, w.k, w.data)
				eventually(t, waitTimeout, func() bool { return holds(t, c.pivot, w.k, w.data) }, "the pivot holds %s", w.k)
			}
			require.True(t, !nodeStatus(t, c.pivot, c.a.addr).UpToDate || holds(t, c.a, "users/b2", `2`),
				"A is reported up to date only if it holds b2")
			release()
			eventually(t, waitTimeout, func() bool { return holds(t, c.a, "users/b2", `2`) },
				"B's write that reached the pivot around A's push reaches A")
			waitConverged(t, []*instance{c.pivot, c.a, c.b}, false)
		})
	}
}

// nodeStatus reads what the pivot p reports about the node at addr.
func nodeStatus(t testing.TB, p *instance, addr string) pivot.NodeStatus {
	t.Helper()
	for _, n := range p.result.Status().Nodes {
		if n.Address == addr {
			return n
		}
	}
	t.Fatalf("the pivot does not report the node %s", addr)
	return pivot.NodeStatus{}
}

// skipped reads the skipped triggers the pivot reports for the node at addr.
func skipped(p *instance, addr string) int64 {
	for _, n := range p.result.Status().Nodes {
		if n.Address == addr {
			return n.SkippedTriggers
		}
	}
	return -1
}
