package pivot

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestNodeSync_RequestDuringRoundSchedulesExactlyOneMore checks the node's coalescing:
// requests made while a round runs are all served by one more round, never dropped.
func TestNodeSync_RequestDuringRoundSchedulesExactlyOneMore(t *testing.T) {
	e := &syncEngine{cfg: Config{}.withDefaults()}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	defer e.cancel()
	users, settings := &syncKey{path: "users/*"}, &syncKey{path: "settings"}
	e.keys = []*syncKey{users, settings}
	n := newNodeRole(e, "127.0.0.1:1")

	first := n.request(users, needPush)
	work, done := n.take()
	<-n.kick
	if work[users] != needPush || len(work) != 1 || (<-chan struct{})(done) != first {
		t.Fatalf("first round takes the first request: %v", work)
	}
	// Three requests while the round runs.
	a := n.request(users, needPull)
	b := n.request(settings, needPush)
	c := n.request(users, needPush)
	if a != b || b != c || a == first {
		t.Fatal("requests during a round all wait for the same next round")
	}
	select {
	case <-n.kick:
	default:
		t.Fatal("a request during a round leaves a kick for the next round")
	}
	select {
	case <-n.kick:
		t.Fatal("three requests leave exactly one kick")
	default:
	}
	close(done)
	work, done = n.take()
	if work[users] != needPush|needPull || work[settings] != needPush {
		t.Fatalf("the next round does all the requested work: %v", work)
	}
	close(done)
	select {
	case <-a:
	default:
		t.Fatal("waiters of the second round are released when it ends")
	}
}

// TestHub_TriggersAreCoalescedPerNode checks the pivot's side: triggers for a node while
// one is in flight are merged into exactly one more request, which carries every key.
func TestHub_TriggersAreCoalescedPerNode(t *testing.T) {
	release := make(chan struct{})
	var requests atomic.Int32
	var lastBody atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		lastBody.Store(string(body))
		if requests.Add(1) == 1 {
			<-release
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	cfg := Config{RequestTimeout: 5 * time.Second}.withDefaults()
	e := newEngine(cfg, "", nil, srv.Client())
	defer e.close()
	h := e.pivotRole
	rn := &remoteNode{addr: srv.Listener.Addr().String(), peer: e.peer(srv.Listener.Addr().String(), nil), pending: map[string]struct{}{}}
	rn.peer.base = srv.URL + cfg.RoutePrefix

	h.trigger(rn, []string{"users/*"})
	waitFor(t, func() bool { return requests.Load() == 1 })
	for i := 0; i < 10; i++ {
		h.trigger(rn, []string{"settings"})
		h.trigger(rn, []string{"things/*"})
	}
	close(release)
	waitFor(t, func() bool {
		rn.mu.Lock()
		defer rn.mu.Unlock()
		return !rn.running
	})
	if got := requests.Load(); got != 2 {
		t.Fatalf("20 triggers during a request: want exactly 1 more request, got %d", got-1)
	}
	if got := lastBody.Load().(string); got != `{"keys":["settings","things/*"]}` {
		t.Fatalf("the coalesced trigger carries every key: %s", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); !cond(); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
	}
}
