package browser_test

// TestBrowser_ClusterList runs the published JS client (ooo-client, as in
// browser_test.go) in headless Chromium, following a list of 10,000 entries on node B
// of a pivot cluster (a pivot and nodes A and B, each a real ooo.Server on
// MemoryStorage on 127.0.0.1, wired with pivot.Setup) while this test updates, pushes
// and deletes entries over REST on node A and on the pivot. Each write is made once
// the page watches for it, and the page reports when the message holding it arrived:
// the test prints the median write → browser latency. A burst of writes made without
// waiting follows; then the list the JS client rebuilt must equal a GET of node B.
//
//	go test -race -v -run ClusterList ./ooo/browser/

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo"
)

const (
	// clusterEntries is the list the browser follows.
	clusterEntries = 10_000
	// clusterRounds of six writes each are timed one at a time.
	clusterRounds = 10
	// clusterBurst writes go out without waiting, after the timed ones.
	clusterBurst = 30
	// clusterWait bounds every wait of the cluster test.
	clusterWait = 60 * time.Second
)

// pageEvent is what the cluster page posts to /__test/event.
type pageEvent struct {
	Kind  string          `json:"kind"` // ready, armed, seen, final, error
	ID    int             `json:"id"`
	At    float64         `json:"at"`      // seen: when ooo-client handed the list over (browser's wall clock, ms)
	Frame float64         `json:"frameAt"` // seen: when the frame of that message arrived
	Count int             `json:"count"`
	State json.RawMessage `json:"state"`
	Error string          `json:"error"`
}

// expectation is what the page waits for after a write: every condition met by the
// list it holds.
type expectation struct {
	ID         int         `json:"id"`
	Final      bool        `json:"final,omitempty"`
	Conditions []condition `json:"conditions,omitempty"`
}

// condition: an entry whose data's marker is Has, or no entry whose index is Absent.
type condition struct {
	Has    string `json:"has,omitempty"`
	Absent string `json:"absent,omitempty"`
}

// clusterNode is one instance of the test's cluster.
type clusterNode struct {
	server *ooo.Server
	sync   pivot.SetupResult
	inst   *testcluster.Instance
	users  atomic.Int64 // users/* entries written into it
	filled chan struct{}
}

func TestBrowser_ClusterList(t *testing.T) {
	chromium := requireChromium(t)
	testdata := requireModules(t)

	expects := make(chan expectation)
	events := make(chan pageEvent, 16)
	p := startClusterNode(t, "", nil)
	for i := 0; i < clusterEntries; i++ {
		if _, err := p.server.Storage.Set(userKey(i), json.RawMessage(fmt.Sprintf(`{"n":%d,"marker":"initial-%d"}`, i, i))); err != nil {
			t.Fatalf("preload the pivot: %v", err)
		}
	}
	a := startClusterNode(t, p.server.Address, nil)
	b := startClusterNode(t, p.server.Address, func(r *mux.Router) { registerClusterPage(r, testdata, expects, events) })
	for _, n := range []*clusterNode{a, b} {
		if err := p.inst.Register(n.inst); err != nil {
			t.Fatalf("register a node: %v", err)
		}
	}
	for name, n := range map[string]*clusterNode{"node A": a, "node B": b} {
		select {
		case <-n.filled:
		case <-time.After(clusterWait):
			t.Fatalf("%s holds %d of the %d entries after %s", name, n.users.Load(), clusterEntries, clusterWait)
		}
	}
	deadline := time.Now().Add(clusterWait)
	for len(p.sync.Status().Nodes) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the pivot knows %d of 2 nodes after %s", len(p.sync.Status().Nodes), clusterWait)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline, not synchronisation
	}

	browser := launch(t, chromium, "http://"+b.server.Address+"/__test/cluster.html")
	page := &pageDriver{t: t, expects: expects, events: events, browser: browser}
	ready := page.await("ready", -1)
	if ready.Count != clusterEntries {
		t.Fatalf("the page's first snapshot holds %d entries, want %d", ready.Count, clusterEntries)
	}

	rest := &restClient{t: t, client: &http.Client{Timeout: clusterWait}}
	var browserMs, frameMs, reportedMs []float64
	watcher := newFrameWatcher(t, b.server.Address, "/users/*")
	var goMs []float64
	timed := func(conditions []condition, write func()) {
		var raw <-chan time.Time
		if conditions[0].Has != "" {
			raw = watcher.expect(`"` + conditions[0].Has + `"`)
		}
		id := page.arm(conditions)
		t0 := time.Now()
		write()
		seen := page.await("seen", id)
		browserMs = append(browserMs, seen.At-float64(t0.UnixNano())/1e6)
		frameMs = append(frameMs, seen.Frame-float64(t0.UnixNano())/1e6)
		reportedMs = append(reportedMs, float64(time.Since(t0))/float64(time.Millisecond))
		if raw != nil {
			select {
			case at := <-raw:
				goMs = append(goMs, float64(at.Sub(t0))/float64(time.Millisecond))
			case <-time.After(clusterWait):
				t.Fatalf("the Go subscriber on node B never saw %v", conditions)
			}
		}
	}
	var pushedOnA []string
	for round := 0; round < clusterRounds; round++ {
		for _, w := range []struct {
			on   *clusterNode
			what string
		}{{a, "A"}, {p, "pivot"}} {
			idx := userIndex(round*7 + len(w.what)) // distinct entries of the preloaded list
			marker := fmt.Sprintf("update-%s-%d", w.what, round)
			timed([]condition{{Has: marker}}, func() { rest.put(w.on, "users/"+idx, marker) })
			marker = fmt.Sprintf("push-%s-%d", w.what, round)
			var index string
			timed([]condition{{Has: marker}}, func() { index = rest.post(w.on, "users/*", marker) })
			if w.on == a {
				pushedOnA = append(pushedOnA, index)
			}
		}
		gone := userIndex(clusterEntries - 1 - round)
		timed([]condition{{Absent: gone}}, func() { rest.del(a, "users/"+gone) })
		gone = pushedOnA[round] // an entry pushed on node A, deleted on the pivot
		timed([]condition{{Absent: gone}}, func() { rest.del(p, "users/"+gone) })
	}

	// The burst: writes to distinct entries, alternately on node A and on the pivot,
	// none awaited before the next.
	var conditions []condition
	var writes []func()
	for i := 0; i < clusterBurst; i++ {
		on, what := a, "A"
		if i%2 == 1 {
			on, what = p, "pivot"
		}
		switch i % 3 {
		case 0:
			idx := userIndex(5000 + i)
			marker := fmt.Sprintf("burst-update-%s-%d", what, i)
			conditions = append(conditions, condition{Has: marker})
			writes = append(writes, func() { rest.put(on, "users/"+idx, marker) })
		case 1:
			marker := fmt.Sprintf("burst-push-%s-%d", what, i)
			conditions = append(conditions, condition{Has: marker})
			writes = append(writes, func() { rest.post(on, "users/*", marker) })
		case 2:
			idx := userIndex(6000 + i)
			conditions = append(conditions, condition{Absent: idx})
			writes = append(writes, func() { rest.del(on, "users/"+idx) })
		}
	}
	id := page.arm(conditions)
	for _, write := range writes {
		write()
	}
	page.await("seen", id)

	final := page.final()
	res, err := rest.client.Get("http://" + b.server.Address + "/users/*")
	if err != nil {
		t.Fatalf("GET node B: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET node B: status %d, %v", res.StatusCode, err)
	}
	// Both decoded the way JavaScript reads JSON (numbers as float64): the JS client
	// cannot hold the 64-bit stamps exactly, and posts them back rounded.
	var want, got []any
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatalf("decode node B's list: %v", err)
	}
	if err := json.Unmarshal(final, &got); err != nil {
		t.Fatalf("decode the page's list: %v", err)
	}
	pushes, deletes := 2*clusterRounds+clusterBurst/3, 2*clusterRounds+clusterBurst/3
	if wantLen := clusterEntries + pushes - deletes; len(want) != wantLen {
		t.Errorf("node B holds %d entries, want %d", len(want), wantLen)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("the JS client's list differs from a GET of node B: %s", firstDifference(want, got))
	}
	t.Logf("the JS client's list of %d entries equals a GET of node B after %d timed writes and a burst of %d",
		len(got), len(browserMs), clusterBurst)
	t.Logf("write on node A or the pivot (REST) → ooo-client in Chromium on node B, %d writes on a list of %d entries: "+
		"median %.2f ms (min %.2f, max %.2f; browser clock, 0.1 ms steps), of which the frame's arrival in the browser: median %.2f ms; "+
		"until the page's report reached the test: median %.2f ms; a Go websocket subscriber (gorilla) of the same list on node B, beside it: median %.2f ms over the %d writes that add a marker",
		len(browserMs), clusterEntries, medianOf(browserMs), minOf(browserMs), maxOf(browserMs), medianOf(frameMs), medianOf(reportedMs), medianOf(goMs), len(goMs))
}

// startClusterNode starts an ooo server on MemoryStorage set up with pivot: the pivot
// when pivotAddr is "", else a node of it. routes, when set, adds routes to the
// server's router before Setup and Start.
func startClusterNode(t *testing.T, pivotAddr string, routes func(*mux.Router)) *clusterNode {
	t.Helper()
	n := &clusterNode{filled: make(chan struct{})}
	s := &ooo.Server{Silence: true, Router: mux.NewRouter(), Storage: &ooo.MemoryStorage{}, Pivot: pivotAddr}
	if routes != nil {
		routes(s.Router)
	}
	var once atomic.Bool
	s.OnStorageEvent = func(ev ooo.StorageEvent) {
		if strings.HasPrefix(ev.Key, "users/") && n.users.Add(1) >= clusterEntries && once.CompareAndSwap(false, true) {
			close(n.filled)
		}
	}
	inst, err := testcluster.Start(testcluster.Spec{Name: "browser-test", Server: s, Config: pivot.Config{
		Keys:      []pivot.Key{{Path: "users/*"}},
		NodesKey:  "things/*",
		Token:     "browser-test-cluster-token",
		ClusterID: "browser-test",
	}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	n.server, n.sync, n.inst = s, inst.Result, inst
	t.Cleanup(inst.Close)
	return n
}

// registerClusterPage adds the cluster page's routes under /__test/ to r.
func registerClusterPage(r *mux.Router, testdata string, expects <-chan expectation, events chan<- pageEvent) {
	r.HandleFunc("/__test/expect", func(w http.ResponseWriter, req *http.Request) {
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case e := <-expects:
			writeJSON(w, e)
		case <-timer.C:
			w.WriteHeader(http.StatusNoContent)
		case <-req.Context().Done():
		}
	}).Methods(http.MethodGet)
	r.HandleFunc("/__test/event", func(w http.ResponseWriter, req *http.Request) {
		var ev pageEvent
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 64<<20)).Decode(&ev); err != nil {
			http.Error(w, "bad event: "+err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case events <- ev:
			writeJSON(w, map[string]bool{"ok": true})
		case <-req.Context().Done():
		}
	}).Methods(http.MethodPost)
	files := http.StripPrefix("/__test/", http.FileServer(http.Dir(testdata)))
	r.PathPrefix("/__test/").Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, ".js") {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		files.ServeHTTP(w, req)
	})).Methods(http.MethodGet)
}

// pageDriver hands the page its expectations and waits for what it reports.
type pageDriver struct {
	t       *testing.T
	expects chan<- expectation
	events  <-chan pageEvent
	browser *browserProcess
	next    int
}

// arm gives the page its next expectation and returns once the page watches for it.
func (d *pageDriver) arm(conditions []condition) int {
	d.t.Helper()
	d.next++
	e := expectation{ID: d.next, Conditions: conditions}
	timer := time.NewTimer(clusterWait)
	defer timer.Stop()
	select {
	case d.expects <- e:
	case <-timer.C:
		d.t.Fatalf("the page did not ask for expectation %d within %s; chromium output (tail):\n%s", e.ID, clusterWait, d.browser.tail())
	}
	d.await("armed", e.ID)
	return e.ID
}

// final asks the page for the list it holds.
func (d *pageDriver) final() json.RawMessage {
	d.t.Helper()
	timer := time.NewTimer(clusterWait)
	defer timer.Stop()
	select {
	case d.expects <- expectation{Final: true}:
	case <-timer.C:
		d.t.Fatalf("the page did not ask for its last expectation within %s", clusterWait)
	}
	return d.await("final", -1).State
}

// await returns the page's next event, which must be of kind (and id, unless -1).
func (d *pageDriver) await(kind string, id int) pageEvent {
	d.t.Helper()
	timer := time.NewTimer(clusterWait)
	defer timer.Stop()
	select {
	case ev := <-d.events:
		if ev.Kind == "error" {
			d.t.Fatalf("page: %s", ev.Error)
		}
		if ev.Kind != kind || (id >= 0 && ev.ID != id) {
			d.t.Fatalf("the page reported %s %d, want %s %d", ev.Kind, ev.ID, kind, id)
		}
		return ev
	case <-timer.C:
		d.t.Fatalf("no %s %d from the page within %s; chromium output (tail):\n%s", kind, id, clusterWait, d.browser.tail())
	}
	return pageEvent{}
}

// restClient writes over ooo's REST routes.
type restClient struct {
	t      *testing.T
	client *http.Client
}

func (c *restClient) do(method string, n *clusterNode, key, body string) []byte {
	c.t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+n.server.Address+"/"+key, reader)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, key, err)
	}
	res, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, key, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil || (res.StatusCode != http.StatusOK && res.StatusCode != http.StatusNoContent) {
		c.t.Fatalf("%s %s: status %d %s %v", method, key, res.StatusCode, out, err)
	}
	return out
}

func (c *restClient) put(n *clusterNode, key, marker string) {
	c.do(http.MethodPut, n, key, fmt.Sprintf(`{"marker":%q}`, marker))
}

func (c *restClient) del(n *clusterNode, key string) { c.do(http.MethodDelete, n, key, "") }

// post pushes a new entry to the glob and returns its index.
func (c *restClient) post(n *clusterNode, glob, marker string) string {
	c.t.Helper()
	var out struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(c.do(http.MethodPost, n, glob, fmt.Sprintf(`{"marker":%q}`, marker)), &out); err != nil || out.Index == "" {
		c.t.Fatalf("POST %s: no index in the answer (%v)", glob, err)
	}
	return out.Index
}

func userIndex(i int) string { return fmt.Sprintf("%08d", i) }

func userKey(i int) string { return "users/" + userIndex(i) }

// firstDifference describes where two decoded lists first differ.
func firstDifference(want, got []any) string {
	for i := range min(len(want), len(got)) {
		if !reflect.DeepEqual(want[i], got[i]) {
			w, _ := json.Marshal(want[i])
			g, _ := json.Marshal(got[i])
			return fmt.Sprintf("entry %d: node B has %s, the page %s", i, w, g)
		}
	}
	if len(want) != len(got) {
		return fmt.Sprintf("node B has %d entries, the page %d", len(want), len(got))
	}
	return "no difference found"
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func minOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func maxOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// frameWatcher is a raw websocket subscriber (gorilla/websocket) that reports when a
// frame holding an awaited marker arrives: the Go side's view of the same broadcast.
type frameWatcher struct {
	mu   sync.Mutex
	want []byte
	seen chan time.Time
}

func newFrameWatcher(t *testing.T, addr, path string) *frameWatcher {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+path, nil)
	if err != nil {
		t.Fatalf("subscribe to %s: %v", path, err)
	}
	w := &frameWatcher{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			at := time.Now()
			w.mu.Lock()
			var seen chan time.Time
			if w.want != nil && bytes.Contains(data, w.want) {
				seen, w.want, w.seen = w.seen, nil, nil
			}
			w.mu.Unlock()
			if seen != nil {
				seen <- at
			}
		}
	}()
	t.Cleanup(func() {
		_ = ws.Close()
		<-done
	})
	return w
}

// expect returns a channel that receives the arrival time of the next frame holding
// marker.
func (w *frameWatcher) expect(marker string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	w.mu.Lock()
	w.want, w.seen = []byte(marker), ch
	w.mu.Unlock()
	return ch
}
