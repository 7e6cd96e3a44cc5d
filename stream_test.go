package pivot_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcert"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// streamConfig is testConfig for nodes that must get every change by their live
// stream: no periodic sync, no sync on read, no anti-entropy, so nothing else can
// bring a change in time.
func streamConfig() pivot.Config {
	cfg := testConfig()
	cfg.SyncInterval = time.Hour
	cfg.ReadBudget = -1
	cfg.RepairInterval = -1
	return cfg
}

// streamHolds reports whether db holds k with data (read through the feed: no BeforeRead).
func streamHolds(t testing.TB, db ooo.Database, k, data string) bool {
	t.Helper()
	changes, _, err := db.(storage.Replica).Changes(k, 0, 1)
	require.NoError(t, err)
	return len(changes) == 1 && !changes[0].Deleted && string(changes[0].Data) == data
}

// waitStreams waits until the pivot lists n nodes connected by stream.
func waitStreams(t testing.TB, p *instance, n int) {
	t.Helper()
	eventually(t, waitTimeout, func() bool {
		open := 0
		for _, ns := range p.result.Status().Nodes {
			if ns.Stream {
				open++
			}
		}
		return open == n
	}, "%d nodes connected by stream", n)
}

// TestStream_NodeThePivotCannotDial: two nodes the pivot cannot reach (one has no
// NodesKey entry, the other's entry names a closed port) get every write of the
// pivot and of each other by their streams, with periodic sync and sync-on-read off.
func TestStream_NodeThePivotCannotDial(t *testing.T) {
	cfg := streamConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	a := startInstance(t, "nodeA", &ooo.MemoryStorage{}, "", p.addr, cfg)
	b := startInstance(t, "nodeB", &ooo.MemoryStorage{}, "", p.addr, cfg)
	_, err := p.db.Set("things/closed", json.RawMessage(fmt.Sprintf(`{"ip":%q}`, freeAddr(t))))
	require.NoError(t, err)
	waitStreams(t, p, 2)

	for i := range 20 {
		k, v := fmt.Sprintf("users/p%d", i), fmt.Sprintf(`{"n":%d}`, i)
		set(t, p, k, v)
		eventually(t, waitTimeout, func() bool { return streamHolds(t, a.db, k, v) && streamHolds(t, b.db, k, v) }, "pivot's %s on both nodes", k)
		k = fmt.Sprintf("users/a%d", i)
		set(t, a, k, v)
		eventually(t, waitTimeout, func() bool { return streamHolds(t, b.db, k, v) }, "node A's %s on node B", k)
		k = fmt.Sprintf("users/b%d", i)
		set(t, b, k, v)
		eventually(t, waitTimeout, func() bool { return streamHolds(t, a.db, k, v) }, "node B's %s on node A", k)
	}
	del(t, p, "users/p0")
	eventually(t, waitTimeout, func() bool { return !streamHolds(t, a.db, "users/p0", `{"n":0}`) }, "a delete reaches node A")
	waitConverged(t, []*instance{p, a, b}, false)

	for _, ns := range p.result.Status().Nodes {
		if ns.Stream {
			require.True(t, ns.LastTrigger.IsZero(), "a node with a stream gets no trigger: %+v", ns)
			require.False(t, ns.LastContact.IsZero())
			require.Positive(t, ns.StreamFrames)
			require.True(t, ns.UpToDate, "%+v", ns)
		}
	}
	st := a.result.Status()
	require.True(t, st.Stream, "node A reports its stream open")
	require.False(t, st.StreamSince.IsZero())
}

// TestStream_RegisteredNodeGetsNoTriggers: a node with a NodesKey entry and a stream is
// one node in Status, connected by stream, and the pivot does not dial it.
func TestStream_RegisteredNodeGetsNoTriggers(t *testing.T) {
	cfg := streamConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	a := startInstance(t, "nodeA", &ooo.MemoryStorage{}, "", p.addr, cfg)
	waitStreams(t, p, 1)
	p.register(a)
	for i := range 5 {
		k, v := fmt.Sprintf("users/p%d", i), fmt.Sprintf(`{"n":%d}`, i)
		set(t, p, k, v)
		eventually(t, waitTimeout, func() bool { return streamHolds(t, a.db, k, v) }, "%s on node A", k)
	}
	nodes := p.result.Status().Nodes
	require.Len(t, nodes, 1, "%+v", nodes)
	require.Equal(t, a.addr, nodes[0].Address)
	require.True(t, nodes[0].Stream)
	require.True(t, nodes[0].LastTrigger.IsZero(), "no trigger while the stream is open: %+v", nodes[0])
}

// TestStream_Disabled: with DisableStream on the nodes, triggers do the work as before;
// with it on the pivot only, nodes fall back to triggers too.
func TestStream_Disabled(t *testing.T) {
	for _, side := range []string{"node", "pivot"} {
		t.Run(side, func(t *testing.T) {
			pc, nc := testConfig(), testConfig()
			if side == "node" {
				nc.DisableStream = true
			} else {
				pc.DisableStream = true
			}
			p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", pc)
			a := startInstance(t, "nodeA", &ooo.MemoryStorage{}, "", p.addr, nc)
			p.register(a)
			set(t, p, "users/x", `{"x":1}`)
			eventually(t, waitTimeout, func() bool { return streamHolds(t, a.db, "users/x", `{"x":1}`) }, "trigger delivers")
			nodes := p.result.Status().Nodes
			require.Len(t, nodes, 1)
			require.False(t, nodes[0].Stream)
			require.False(t, a.result.Status().Stream)
		})
	}
}

// cutProxy forwards TCP connections to target and can cut every open one at once.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	cuts   int
}

// startCutProxy listens on loopback and forwards to target until the test ends.
func startCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		wg.Wait()
	})
	return p
}

// serve forwards one connection both ways until either side ends or cut.
func (p *cutProxy) serve(c net.Conn) {
	u, err := net.Dial("tcp4", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = u.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// cut closes every open connection.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts++
	for c := range p.conns {
		_ = c.Close()
	}
}

// TestStream_CutMidBurstLosesNothing: the node's stream (and its HTTP connections) are
// cut twice in the middle of a burst of writes on the pivot; the node reconnects,
// resumes from its cursor and ends with every entry, each stored once.
func TestStream_CutMidBurstLosesNothing(t *testing.T) {
	cfg := streamConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	proxy := startCutProxy(t, p.addr)
	var mu sync.Mutex
	stored := map[string]int{} // key → times the node stored it
	nodeDB := &ooo.MemoryStorage{}
	server := &ooo.Server{Silence: true, Storage: nodeDB, Pivot: proxy.ln.Addr().String()}
	server.OnStorageEvent = func(ev ooo.StorageEvent) {
		mu.Lock()
		stored[ev.Key]++
		mu.Unlock()
	}
	a := startServer(t, "nodeA", server, "", cfg)
	waitStreams(t, p, 1)

	const burst = 300
	for i := range burst {
		set(t, p, fmt.Sprintf("users/k%03d", i), fmt.Sprintf(`{"i":%d}`, i))
		if i == 100 || i == 200 {
			proxy.cut()
		}
	}
	eventually(t, waitTimeout, func() bool {
		for i := range burst {
			if !streamHolds(t, a.db, fmt.Sprintf("users/k%03d", i), fmt.Sprintf(`{"i":%d}`, i)) {
				return false
			}
		}
		return true
	}, "every entry of the burst on the node")
	waitConverged(t, []*instance{p, a}, false)
	// The storage's events reach OnStorageEvent after the write they tell of: wait until
	// every entry's event was counted before counting them.
	eventually(t, waitTimeout, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range burst {
			if stored[fmt.Sprintf("users/k%03d", i)] == 0 {
				return false
			}
		}
		return true
	}, "the node's storage events of every entry")
	mu.Lock()
	defer mu.Unlock()
	for i := range burst {
		k := fmt.Sprintf("users/k%03d", i)
		require.Equal(t, 1, stored[k], "%s stored once on the node", k)
	}
	waitStreams(t, p, 1)
}

// TestStream_OverMutualTLS: under mutual TLS a node the pivot cannot dial gets the
// pivot's writes on its stream (wss, with the node's certificate checked as on every
// request).
func TestStream_OverMutualTLS(t *testing.T) {
	ca, err := testcert.NewCA()
	require.NoError(t, err)
	pcert, err := ca.Leaf("127.0.0.1")
	require.NoError(t, err)
	ncert, err := ca.Leaf("127.0.0.1")
	require.NoError(t, err)
	pcfg := streamConfig()
	pcfg.TLS = mutualTLS(ca, pcert)
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", pcfg)
	ncfg := streamConfig()
	ncfg.TLS = mutualTLS(ca, ncert)
	node := startInstance(t, "node", &ooo.MemoryStorage{}, "", p.addr, ncfg)
	waitStreams(t, p, 1)
	set(t, p, "users/over-wss", `{"from":"pivot"}`)
	eventually(t, waitTimeout, func() bool { return streamHolds(t, node.db, "users/over-wss", `{"from":"pivot"}`) }, "the write on the node, by its stream")
	require.True(t, node.result.Status().Stream)
}

// TestStream_RealValuesReachANodeThePivotCannotDial: values from a few bytes to near
// the largest body the server accepts, HTML characters, U+2028, non-ASCII text and
// huge numbers, written on the pivot and on another node, reach a node the pivot
// cannot dial byte for byte, by its stream alone (small ones inline, large ones as
// pokes it pulls).
func TestStream_RealValuesReachANodeThePivotCannotDial(t *testing.T) {
	cfg := streamConfig()
	cfg.RequestTimeout = 10 * time.Second // a body of megabytes under the race detector
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	a := startInstance(t, "nodeA", &ooo.MemoryStorage{}, "", p.addr, cfg)
	hidden := startInstance(t, "hidden", &ooo.MemoryStorage{}, "", p.addr, cfg)
	waitStreams(t, p, 2)

	values := append([]string{}, realValues...)
	for _, n := range []int{100, 64 << 10, 1 << 20, ooo.DefaultMaxBodyBytes - 4096} {
		values = append(values, `{"v":`+bigValue(n, "é<&>\u2028東")+`}`)
	}
	for i, v := range values {
		var compact bytes.Buffer
		require.NoError(t, json.Compact(&compact, []byte(v)))
		for _, writer := range []*instance{p, a} {
			k := fmt.Sprintf("users/%s-%d", writer.name, i)
			set(t, writer, k, v)
			eventually(t, waitTimeout, func() bool { return streamHolds(t, hidden.db, k, compact.String()) },
				"%s (%d bytes) on the node the pivot cannot dial", k, compact.Len())
		}
	}
	waitConverged(t, []*instance{p, a, hidden}, false)
	for _, ns := range p.result.Status().Nodes {
		require.True(t, ns.LastTrigger.IsZero(), "no trigger reached a node: %+v", ns)
	}
}

// TestStream_ASpoofedNameOnlyDelaysTheNode: a peer holding the secret opens a stream
// under the name of a registered node that has no stream (it lies about who it is).
// Without mutual TLS the pivot cannot tell, takes the name as streaming and stops
// triggering the real node (README, Security: the limit); the real node still gets
// every change, on its periodic sync: the lie delays it, it loses nothing.
func TestStream_ASpoofedNameOnlyDelaysTheNode(t *testing.T) {
	cfg := streamConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	dialled := cfg
	dialled.DisableStream = true
	dialled.SyncInterval = 100 * time.Millisecond
	honest := startInstance(t, "honest", &ooo.MemoryStorage{}, "", p.addr, dialled)
	p.register(honest)

	liar := cfg
	liar.Advertise = honest.addr // the name it sends in HeaderNode: the honest node's
	spoof := startInstance(t, "liar", &ooo.MemoryStorage{}, "", p.addr, liar)
	eventually(t, waitTimeout, func() bool { return spoof.result.Status().Stream }, "the liar's stream opens")

	for i := range 10 {
		k, v := fmt.Sprintf("users/s%d", i), fmt.Sprintf(`{"t":"<é>","n":%d}`, i)
		set(t, p, k, v)
		eventually(t, waitTimeout, func() bool { return streamHolds(t, honest.db, k, v) }, "%s on the honest node", k)
	}
	waitConverged(t, []*instance{p, honest}, false)
}
