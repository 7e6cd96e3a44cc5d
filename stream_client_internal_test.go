package pivot

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// A lightweight node for stream tests and benchmarks: one websocket speaking the
// stream protocol, applying what arrives under LWW (Wins) into a map, pulling over
// HTTP when poked or when a frame does not continue its cursor. A thousand of them
// fit on a small machine where a thousand ooo servers would not.

// streamTestConfig is the config of the pivots these tests start.
func streamTestConfig() Config {
	return Config{
		Keys:           []Key{{Path: "users/*"}, {Path: "settings"}},
		NodesKey:       "things/*",
		Token:          "s3cret-token-for-tests",
		ClusterID:      "test-cluster",
		SyncInterval:   -1,
		RepairInterval: -1,
		RequestTimeout: 5 * time.Second,
	}
}

// startStreamPivot starts a pivot on loopback with cfg.
func startStreamPivot(t testing.TB, cfg Config) (*ooo.Server, SetupResult) {
	t.Helper()
	server := &ooo.Server{Silence: true, Storage: &ooo.MemoryStorage{}}
	result := Setup(server, cfg)
	require.NoError(t, server.Start("127.0.0.1:0"))
	t.Cleanup(func() { server.Close(os.Interrupt) })
	return server, result
}

// streamClient is one lightweight node following key path on the pivot at addr.
type streamClient struct {
	t    testing.TB
	cfg  Config
	addr string
	name string
	path string
	pull *peer

	conn    *websocket.Conn
	out, in frameSigner

	mu   sync.Mutex
	held chan struct{}

	data    map[string]storage.Entry // owned by the reader
	epoch   string
	seq     uint64
	applied map[string]int // key → times an entry of it was stored

	frames, pokes, pulls atomic.Int64
	got                  atomic.Int64 // entries stored
	last                 atomic.Int64 // unix ns of the last store
	done                 chan struct{}
	err                  atomic.Pointer[error]
}

// dialStream opens a stream as a node named name would, and returns the connection,
// the request's proof and the upgrade's answer.
func dialStream(addr, name string, cfg Config) (*websocket.Conn, string, *http.Response, error) {
	return dialStreamWith(addr, name, cfg, nil)
}

// smallReceiveBuffer dials with a 128 KiB receive buffer (above the loopback MSS, so
// the window never stalls), so a client that stops reading
// stops the pivot's writes after a few frames instead of megabytes.
func smallReceiveBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		_ = c.(*net.TCPConn).SetReadBuffer(128 << 10)
	}
	return c, err
}

// dialStreamWith is dialStream through dial (nil: the default dialer).
func dialStreamWith(addr, name string, cfg Config, dial func(context.Context, string, string) (net.Conn, error)) (*websocket.Conn, string, *http.Response, error) {
	cfg = cfg.withDefaults()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+cfg.RoutePrefix+routeStream, nil)
	if err != nil {
		return nil, "", nil, err
	}
	req.Header.Set(HeaderNode, name)
	if err := SignRequest(req, nil, cfg); err != nil {
		return nil, "", nil, err
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, ReadBufferSize: 1024, WriteBufferPool: &sync.Pool{}, NetDialContext: dial}
	conn, resp, err := d.Dial("ws://"+addr+cfg.RoutePrefix+routeStream, req.Header)
	return conn, req.Header.Get(HeaderSignature), resp, err
}

// newStreamClient connects a client to the pivot of result at addr, its cursor at the
// pivot's current head of path (as if it had just pulled), and starts reading.
func newStreamClient(t testing.TB, result SetupResult, addr, name, path string) *streamClient {
	t.Helper()
	return newStreamClientWith(t, result, addr, name, path, nil)
}

// newStreamClientWith is newStreamClient dialling through dial.
func newStreamClientWith(t testing.TB, result SetupResult, addr, name, path string, dial func(context.Context, string, string) (net.Conn, error)) *streamClient {
	t.Helper()
	cfg := result.engine.cfg
	conn, sig, resp, err := dialStreamWith(addr, name, cfg, dial)
	require.NoError(t, err)
	require.NoError(t, VerifyAnswer(&http.Request{Header: http.Header{HeaderSignature: {sig}}}, resp.StatusCode, resp.Header, nil, cfg))
	secret := []byte(cfg.Token)
	c := &streamClient{t: t, cfg: cfg, addr: addr, name: name, path: path, conn: conn,
		out:  frameSigner{secret: secret, proof: sig, dir: toPivot},
		in:   frameSigner{secret: secret, proof: sig, dir: toNode},
		data: map[string]storage.Entry{}, applied: map[string]int{}, done: make(chan struct{})}
	c.pull = result.engine.peer(addr, func() string { return name })
	c.held = make(chan struct{})
	close(c.held)
	sk := result.engine.keyByPath(path)
	c.epoch = sk.rep.Epoch()
	head, _ := feedHead(sk)
	c.seq = head
	c.ack()
	go c.read()
	t.Cleanup(c.close)
	return c
}

// close ends the client and waits for its reader.
func (c *streamClient) close() {
	_ = c.conn.Close()
	c.resume()
	<-c.done
}

// pause stops reading the stream (the pivot's writes pile up); resume reads again.
func (c *streamClient) pause() {
	c.mu.Lock()
	c.held = make(chan struct{})
	c.mu.Unlock()
}

func (c *streamClient) resume() {
	c.mu.Lock()
	select {
	case <-c.held:
	default:
		close(c.held)
	}
	c.mu.Unlock()
}

// ack tells the pivot where the client's cursor stands.
func (c *streamClient) ack() {
	body, _ := encodeBody(streamFrame{Type: frameAck, Key: c.path, Epoch: c.epoch, Next: c.seq})
	if err := c.out.write(c.conn, body); err != nil {
		c.fail(err)
	}
}

func (c *streamClient) fail(err error) {
	if c.err.Load() == nil {
		c.err.Store(&err)
	}
}

// store applies changes under LWW.
func (c *streamClient) store(changes []storage.Change) {
	for _, ch := range changes {
		if cur, ok := c.data[ch.Key]; ok && !Wins(ch.Entry, cur) {
			continue
		}
		c.data[ch.Key] = ch.Entry
		c.applied[ch.Key]++
		c.got.Add(1)
	}
	c.last.Store(time.Now().UnixNano())
}

// catchUp pulls path from the cursor to the pivot's head.
func (c *streamClient) catchUp() {
	c.pulls.Add(1)
	for range 1000 {
		resp, err := c.pull.changes(context.Background(), c.path, c.seq, 500, 1<<20)
		if err != nil {
			c.fail(err)
			return
		}
		c.store(resp.Changes)
		c.epoch, c.seq = resp.Epoch, resp.Next
		if !resp.More {
			break
		}
	}
	c.ack()
}

// read takes frames until the connection ends.
func (c *streamClient) read() {
	defer close(c.done)
	for {
		c.mu.Lock()
		held := c.held
		c.mu.Unlock()
		<-held
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		var f streamFrame
		if err := c.in.check(msg, &f); err != nil {
			c.fail(err)
			return
		}
		switch {
		case f.Type == framePoke:
			c.pokes.Add(1)
			c.catchUp()
		case f.Type == frameChanges && f.Epoch == c.epoch && f.From <= c.seq:
			c.frames.Add(1)
			var fresh []storage.Change
			for _, ch := range f.Changes {
				if ch.Seq > c.seq {
					fresh = append(fresh, ch)
				}
			}
			c.store(fresh)
			c.seq = max(c.seq, f.Next)
			c.ack()
		case f.Type == frameChanges:
			c.catchUp()
		}
	}
}

// count is how many entries the client stored.
func (c *streamClient) count() int64 { return c.got.Load() }

// TestStream_ThousandNodes: 1,000 stream-connected nodes all receive one write.
func TestStream_ThousandNodes(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	server, result := startStreamPivot(t, streamTestConfig())
	clients := make([]*streamClient, n)
	for i := range clients {
		clients[i] = newStreamClient(t, result, server.Address, fmt.Sprintf("10.0.%d.%d:80", i/250, i%250), "users/*")
	}
	streamEventually(t, func() bool { return int(result.engine.pivotRole.streams.open.Load()) == n }, "%d streams open", n)
	streamEventually(t, func() bool { return acked(result, n) }, "every stream acknowledged")
	_, err := server.Storage.Set("users/one", []byte(`{"v":1}`))
	require.NoError(t, err)
	streamEventually(t, func() bool {
		for _, c := range clients {
			if c.count() < 1 {
				return false
			}
		}
		return true
	}, "the write on all %d nodes", n)
	for _, c := range clients {
		require.Nil(t, c.err.Load())
		require.Equal(t, int64(1), c.count())
	}
	nodes := result.Status().Nodes
	require.Len(t, nodes, n)
	require.True(t, nodes[0].Stream)
}

// acked reports whether the pivot knows the position of users/* of n streams.
func acked(result SetupResult, n int) bool {
	sk := result.engine.keyByPath("users/*")
	known := 0
	for _, s := range result.engine.pivotRole.streams.list() {
		s.mu.Lock()
		if _, ok := s.pos[sk]; ok {
			known++
		}
		s.mu.Unlock()
	}
	return known == n
}

// streamEventually polls cond every 2 ms until it holds, or fails the test after 30 s.
func streamEventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not reached within 30s: "+format, args...)
		}
		<-tick.C
	}
}

// TestStream_SlowNodeDegradesToPokes: a node that stops reading while the pivot takes
// megabytes of writes has its queue replaced by pokes; a node that keeps reading gets
// every write meanwhile; once the slow node reads again it catches up by pulling,
// with every entry stored once.
func TestStream_SlowNodeDegradesToPokes(t *testing.T) {
	server, result := startStreamPivot(t, streamTestConfig())
	fast := newStreamClient(t, result, server.Address, "10.0.0.1:80", "users/*")
	slow := newStreamClientWith(t, result, server.Address, "10.0.0.2:80", "users/*", smallReceiveBuffer)
	streamEventually(t, func() bool { return acked(result, 2) }, "both acknowledged")
	slow.pause()
	value := []byte(`{"pad":"` + strings.Repeat("x", 40000) + `"}`)
	// One write at a time (the fast node holds each before the next), so each is one
	// frame queued for the slow node: its queue, not the hub's burst handling, must
	// overflow. Writes go on until it does (at most 40 MB), then ten more.
	writes, after := 0, -1
	for ; writes < 1000 && after != 0; writes++ {
		_, err := server.Storage.Set(fmt.Sprintf("users/k%04d", writes), value)
		require.NoError(t, err)
		n := int64(writes + 1)
		streamEventually(t, func() bool { return fast.count() == n }, "the fast node holds write %d while the slow one is stuck", writes)
		switch {
		case after > 0:
			after--
		case degraded(result) > 0:
			after = 10
		}
	}
	require.Positive(t, degraded(result), "the slow node degraded to pokes: %+v", result.Status().Nodes)
	slow.resume()
	streamEventually(t, func() bool { return slow.count() >= int64(writes) }, "the slow node caught up (%d, err %v, frames %d, pokes %d, pulls %d)", slow.count(), slow.err.Load(), slow.frames.Load(), slow.pokes.Load(), slow.pulls.Load())
	require.Nil(t, slow.err.Load())
	require.Nil(t, fast.err.Load())
	require.Positive(t, slow.pokes.Load())
	require.Equal(t, int64(writes), slow.count(), "each entry stored once")
	t.Logf("%d writes of 40 kB; the slow node got %d frames, %d pokes, and pulled %d times", writes, slow.frames.Load(), slow.pokes.Load(), slow.pulls.Load())
	require.Equal(t, int64(writes), fast.count())
}

// degraded sums StreamDegraded over the nodes.
func degraded(result SetupResult) int64 {
	var n int64
	for _, ns := range result.Status().Nodes {
		n += ns.StreamDegraded
	}
	return n
}

// TestStream_Hostile: upgrades without a proof, with a wrong one, replayed, from a
// browser or without the upgrade are refused before any stream opens; a stream that
// sends malformed, unsigned, replayed or unexpected frames is closed; nothing changes
// on the pivot, and a good stream keeps getting every write throughout.
func TestStream_Hostile(t *testing.T) {
	cfg := streamTestConfig()
	server, result := startStreamPivot(t, cfg)
	good := newStreamClient(t, result, server.Address, "10.0.0.1:80", "users/*")
	streamEventually(t, func() bool { return acked(result, 1) }, "good acknowledged")
	hub := result.engine.pivotRole.streams
	base := "http://" + server.Address + DefaultRoutePrefix + routeStream
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	wsURL := "ws://" + server.Address + DefaultRoutePrefix + routeStream
	before := result.Status()

	t.Run("no proof", func(t *testing.T) {
		h := http.Header{HeaderVersion: {ProtocolVersion}, HeaderCluster: {cfg.ClusterID}}
		_, resp, err := d.Dial(wsURL, h)
		require.Error(t, err)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("wrong token", func(t *testing.T) {
		wrong := cfg
		wrong.Token = "another-secret-of-16+chars"
		_, _, resp, err := dialStream(server.Address, "10.9.9.9:80", wrong)
		require.Error(t, err)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("replayed upgrade", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base, nil)
		req.Header.Set(HeaderNode, "10.9.9.8:80")
		require.NoError(t, SignRequest(req, nil, cfg))
		conn, _, err := d.Dial(wsURL, req.Header)
		require.NoError(t, err)
		_ = conn.Close()
		_, resp, err := d.Dial(wsURL, req.Header)
		require.Error(t, err)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("browser origin", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base, nil)
		require.NoError(t, SignRequest(req, nil, cfg))
		req.Header.Set("Origin", "http://evil.example")
		_, resp, err := d.Dial(wsURL, req.Header)
		require.Error(t, err)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("no upgrade", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base, nil)
		require.NoError(t, SignRequest(req, nil, cfg))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})

	frames := map[string]func(c *websocket.Conn, out *frameSigner){
		"not a frame": func(c *websocket.Conn, _ *frameSigner) { _ = c.WriteMessage(websocket.TextMessage, []byte("hello")) },
		"unsigned": func(c *websocket.Conn, _ *frameSigner) {
			_ = c.WriteMessage(websocket.TextMessage, []byte("\n"+`{"type":"ack","key":"users/*","epoch":"x","next":1}`))
		},
		"binary": func(c *websocket.Conn, _ *frameSigner) { _ = c.WriteMessage(websocket.BinaryMessage, []byte{1, 2}) },
		"malformed json": func(c *websocket.Conn, out *frameSigner) {
			_ = out.write(c, []byte(`{"type":"ack",`))
		},
		"unknown field": func(c *websocket.Conn, out *frameSigner) {
			_ = out.write(c, []byte(`{"type":"ack","key":"users/*","bogus":1}`))
		},
		"changes from a node": func(c *websocket.Conn, out *frameSigner) {
			_ = out.write(c, []byte(`{"type":"changes","key":"users/*","epoch":"x","changes":[{"key":"users/evil","created":1,"data":{"x":1},"seq":1}]}`))
		},
		"key not synced": func(c *websocket.Conn, out *frameSigner) {
			_ = out.write(c, []byte(`{"type":"ack","key":"secrets/*","epoch":"x","next":1}`))
		},
		"replayed frame": func(c *websocket.Conn, out *frameSigner) {
			body := []byte(`{"type":"ack","key":"users/*","epoch":"x","next":0}`)
			replay := *out
			_ = out.write(c, body)
			_ = replay.write(c, body) // the same number again
		},
		"frame of another stream": func(c *websocket.Conn, out *frameSigner) {
			other := *out
			other.proof = "0000"
			_ = other.write(c, []byte(`{"type":"ack","key":"users/*","epoch":"x","next":0}`))
		},
	}
	for name, send := range frames {
		t.Run(name, func(t *testing.T) {
			conn, sig, _, err := dialStream(server.Address, "10.9.9.7:80", cfg)
			require.NoError(t, err)
			defer conn.Close()
			streamEventually(t, func() bool { return hub.open.Load() == 2 }, "the stream opened")
			out := frameSigner{secret: []byte(cfg.Token), proof: sig, dir: toPivot}
			send(conn, &out)
			streamEventually(t, func() bool { return hub.open.Load() == 1 }, "the pivot closed the stream")
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					break // closed by the pivot
				}
			}
		})
	}

	after := result.Status()
	require.Equal(t, before.PushedEntries, after.PushedEntries, "nothing applied on the pivot")
	raw, err := server.Storage.Get("users/evil")
	require.Error(t, err, "nothing written: %s", raw)
	_, err = server.Storage.Set("users/after", []byte(`{"ok":true}`))
	require.NoError(t, err)
	streamEventually(t, func() bool { return good.count() == 1 }, "the good stream still gets writes")
	require.Nil(t, good.err.Load())
}

// feedHead returns the head of sk's feed, reading one change at most (the storages
// the tests use give their head for a since past it).
func feedHead(sk *syncKey) (uint64, bool) {
	if !sk.db.Active() {
		return 0, false
	}
	_, next, err := sk.rep.Changes(sk.path, ^uint64(0)-1, 1)
	return next, err == nil
}
