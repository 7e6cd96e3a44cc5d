package pivot

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo/storage"
)

// The node's side of the live stream (the pivot's is in stream_hub.go). The node keeps
// one websocket open to the pivot, signed like every request, and reconnects with the
// engine's backoff when it ends. What arrives is checked (every frame's HMAC, then
// its shape) and handed to the node's run goroutine, which owns the cursors: change
// frames are applied there by applyStream, through the pull's own apply path
// (applyRemote, under LWW) and only where they continue the pull cursor; pokes
// become pulls. After each apply or pull the node acknowledges its cursor, which is
// where the pivot's next frame of that key starts.

// needStream is the work bit of a round that applies the frames the stream received.
const needStream uint8 = 1 << 7

// nodeStream is a node's live stream to the pivot. Safe for concurrent use.
type nodeStream struct {
	n *nodeRole

	up    atomic.Bool
	since atomic.Int64 // unix ns the open stream was opened

	wake chan struct{} // capacity 1: acks to send

	mu      sync.Mutex
	inbox   map[*syncKey][]streamFrame // frames received and not yet applied
	inBytes int
	acks    map[*syncKey]streamPos // each key's cursor, as last applied or pulled
	sent    map[*syncKey]streamPos // the acks sent on the open stream
}

// newNodeStream makes the stream of node n, or nil when the config turns it off or
// gives a Client the stream cannot honour: one whose Transport is neither an
// *http.Transport nor a StreamDialer (a custom proxy, say), since the stream dials
// on its own and would bypass it.
func newNodeStream(n *nodeRole) *nodeStream {
	if n.e.cfg.DisableStream || streamTransport(n.e.client) == nil {
		return nil
	}
	return &nodeStream{
		n:     n,
		wake:  make(chan struct{}, 1),
		inbox: map[*syncKey][]streamFrame{},
		acks:  map[*syncKey]streamPos{},
		sent:  map[*syncKey]streamPos{},
	}
}

// StreamDialer is implemented by a Config.Client Transport that is not an
// *http.Transport but can open the live stream's connections: a fault-injecting test
// transport, or a program's own transport over its own dialer. The stream dials
// through DialStream (TLS on top of it from Config.TLS), so it breaks where the
// transport's links break, as requests do. A Transport that is neither gets no
// stream.
type StreamDialer interface {
	// DialStream opens a connection to addr ("host:port") for the stream, as
	// net.Dialer.DialContext does.
	DialStream(ctx context.Context, network, addr string) (net.Conn, error)
}

// streamDial is how the stream reaches the pivot: the dialer, proxy and TLS settings
// of the Client's Transport.
type streamDial struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	dialTLS func(ctx context.Context, network, addr string) (net.Conn, error)
	proxy   func(*http.Request) (*url.URL, error)
	tls     *tls.Config
}

// streamTransport returns how the stream dials with client's Transport, or nil when
// it cannot (see StreamDialer).
func streamTransport(client *http.Client) *streamDial {
	if client == nil {
		return nil
	}
	switch t := client.Transport.(type) {
	case nil:
		d := http.DefaultTransport.(*http.Transport)
		return &streamDial{dial: d.DialContext, proxy: d.Proxy}
	case *http.Transport:
		return &streamDial{dial: t.DialContext, dialTLS: t.DialTLSContext, proxy: t.Proxy, tls: t.TLSClientConfig}
	case StreamDialer:
		return &streamDial{dial: t.DialStream}
	}
	return nil
}

// run keeps the stream open until the engine stops: it connects, serves the stream
// until it ends, and reconnects with backoff (from the first step again after a
// stream that was open).
func (s *nodeStream) run() {
	e := s.n.e
	if !e.waitReady() {
		return
	}
	failures := 0
	var lastErr string
	for {
		opened, err := s.session()
		if e.ctx.Err() != nil {
			return
		}
		if opened {
			failures = 0
		}
		failures++
		wait := e.backoff(failures, rand.Int64N)
		switch {
		case errors.Is(err, errStreamOff):
			wait = streamOffRetry
		case errors.Is(err, ErrUnauthorized) && err.Error() != lastErr:
			e.log.Warn("pivot: live stream refused", "err", err)
		default:
			e.log.Debug("pivot: live stream ended", "err", err)
		}
		if err != nil {
			lastErr = err.Error()
		}
		t := time.NewTimer(wait)
		select {
		case <-e.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// dial opens the stream, signed with each secret in turn (as requests are, during a
// rotation), and checks the pivot's signed answer. It returns the connection and the
// signers of both directions.
func (s *nodeStream) dial() (*websocket.Conn, frameSigner, frameSigner, error) {
	e, p := s.n.e, s.n.active.Load()
	u, err := url.Parse(p.base + routeStream)
	if err != nil {
		return nil, frameSigner{}, frameSigner{}, fmt.Errorf("pivot: stream: %w", err)
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	t := streamTransport(e.client)
	dialer := websocket.Dialer{
		HandshakeTimeout:  e.cfg.RequestTimeout,
		NetDialContext:    t.dial,
		NetDialTLSContext: t.dialTLS,
		Proxy:             t.proxy,
		TLSClientConfig:   t.tls,
		ReadBufferSize:    4096,
		WriteBufferPool:   &sync.Pool{},
	}
	if dialer.TLSClientConfig == nil && e.cfg.TLS != nil {
		dialer.TLSClientConfig = e.cfg.TLS.Clone()
	}
	secrets := p.keys.secrets(time.Now())
	if len(secrets) == 0 {
		secrets = [][]byte{nil}
	}
	for i, secret := range secrets {
		header := http.Header{}
		header.Set(HeaderVersion, ProtocolVersion)
		header.Set(HeaderCluster, p.cluster)
		if id := e.nodeID(); id != "" {
			header.Set(HeaderNode, id)
		}
		var sig string
		if secret != nil {
			req := &http.Request{Method: http.MethodGet, URL: u, Header: header}
			sig = signRequest(req, routeStream, nil, secret, time.Now())
		}
		conn, resp, err := dialer.DialContext(e.ctx, u.String(), header)
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
				_ = resp.Body.Close()
			}
			switch {
			case status == http.StatusNotFound:
				return nil, frameSigner{}, frameSigner{}, errStreamOff
			case status == http.StatusUnauthorized && i+1 < len(secrets):
				continue
			case status != 0:
				return nil, frameSigner{}, frameSigner{}, p.fail("stream", status, "", fmt.Sprintf("upgrade refused: %v", err))
			}
			return nil, frameSigner{}, frameSigner{}, p.fail("stream", 0, codeUnavailable, transportError(err))
		}
		if secret != nil && !answerValid(secret, sig, resp.StatusCode, resp.Header, nil) {
			_ = conn.Close()
			return nil, frameSigner{}, frameSigner{}, &RemoteError{Op: "stream", Peer: p.base, Status: resp.StatusCode,
				Message: "the upgrade carries no valid " + HeaderSignature, kind: ErrUnauthorized}
		}
		return conn, frameSigner{secret: secret, proof: sig, dir: toPivot}, frameSigner{secret: secret, proof: sig, dir: toNode}, nil
	}
	return nil, frameSigner{}, frameSigner{}, errors.New("pivot: stream: no secret")
}

// session opens the stream and serves it until it ends: opened tells whether it
// was open at all.
func (s *nodeStream) session() (opened bool, err error) {
	e := s.n.e
	conn, out, in, err := s.dial()
	if err != nil {
		return false, err
	}
	done := make(chan struct{})
	defer func() {
		close(done)
		_ = conn.Close()
		s.up.Store(false)
	}()
	conn.SetReadLimit(e.cfg.MaxBodyBytes)
	s.mu.Lock()
	s.sent = map[*syncKey]streamPos{}
	s.mu.Unlock()
	s.since.Store(time.Now().UnixNano())
	s.up.Store(true)
	s.n.contact()
	e.log.Info("pivot: live stream open", "pivot", *s.n.using.Load())
	defer func() {
		if e.ctx.Err() == nil {
			e.log.Info("pivot: live stream ended, reconnecting", "pivot", *s.n.using.Load(), "err", transportError(err))
		}
	}()
	if !e.spawn(func() { s.write(conn, &out, done) }) {
		return true, ErrClosed
	}
	// Resume from the cursor: a pull now covers whatever happened while the stream was
	// down, and its ack tells the pivot where to go on from.
	s.n.request(nil, needPull)
	s.signal()

	alive := func() { _ = conn.SetReadDeadline(time.Now().Add(streamIdle)) }
	alive()
	conn.SetPingHandler(func(data string) error {
		alive()
		s.n.contact()
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(streamWriteTimeout))
	})
	conn.SetPongHandler(func(string) error { alive(); return nil })
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			return true, fmt.Errorf("pivot: stream: %w", err)
		}
		e.traffic.received.Add(int64(len(msg)))
		if kind != websocket.TextMessage {
			return true, fmt.Errorf("%w: binary message", errFrame)
		}
		var f streamFrame
		if err := in.check(msg, &f); err != nil {
			e.fail("pivot: live stream closed", err)
			return true, err
		}
		if err := s.receive(f, len(msg)); err != nil {
			e.fail("pivot: live stream closed", err)
			return true, err
		}
		alive()
		s.n.contact()
	}
}

// receive takes one checked frame: it queues changes for the run goroutine and turns
// pokes into pulls. A frame that is not what the pivot sends, names a key not synced
// here, or carries an entry outside its key or its range is refused.
func (s *nodeStream) receive(f streamFrame, size int) error {
	e := s.n.e
	switch f.Type {
	case framePoke:
		if f.Key == "" {
			s.n.request(nil, needPull)
			return nil
		}
		sk := e.keyByPath(f.Key)
		if sk == nil {
			return fmt.Errorf("%w: poke of key %q, not synced here", errFrame, f.Key)
		}
		s.n.request(sk, needPull)
		return nil
	case frameChanges:
	default:
		return fmt.Errorf("%w: unexpected frame type %q", errFrame, f.Type)
	}
	sk := e.keyByPath(f.Key)
	if sk == nil {
		return fmt.Errorf("%w: changes of key %q, not synced here", errFrame, f.Key)
	}
	if f.Epoch == "" || f.Next < f.From || len(f.Changes) == 0 {
		return fmt.Errorf("%w: changes of %s without epoch or range", errFrame, f.Key)
	}
	for i, c := range f.Changes {
		if err := validEntry(sk.path, c.Entry); err != nil {
			return fmt.Errorf("%w: changes[%d]: %v", errFrame, i, err)
		}
		if c.Seq <= f.From || c.Seq > f.Next {
			return fmt.Errorf("%w: changes[%d] at %d outside %d..%d", errFrame, i, c.Seq, f.From, f.Next)
		}
	}
	s.mu.Lock()
	if s.inBytes+size > streamQueueBytes {
		// The run goroutine is behind (a long round): drop what waits and pull
		// instead, so a busy node holds a bounded amount of frames.
		s.inbox, s.inBytes = map[*syncKey][]streamFrame{}, 0
		s.mu.Unlock()
		s.n.request(nil, needPull)
		return nil
	}
	s.inbox[sk] = append(s.inbox[sk], f)
	s.inBytes += size
	s.mu.Unlock()
	s.n.request(sk, needStream)
	return nil
}

// take hands the run goroutine the frames of sk received so far, in order.
func (s *nodeStream) take(sk *syncKey) []streamFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	frames := s.inbox[sk]
	delete(s.inbox, sk)
	if len(s.inbox) == 0 {
		s.inBytes = 0
	}
	return frames
}

// ack records cursor c of sk for the pivot, and wakes the writer when it moved. Called
// by the run goroutine; a nil stream does nothing.
func (s *nodeStream) ack(sk *syncKey, c *cursor) {
	if s == nil || c.PivotEpoch == "" {
		return
	}
	s.mu.Lock()
	s.acks[sk] = streamPos{c.PivotEpoch, c.Pull}
	s.mu.Unlock()
	s.signal()
}

// signal wakes the writer.
func (s *nodeStream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// write sends the acks that moved since they were last sent on conn, until done or
// the engine stops (then it says goodbye and closes conn, which ends session).
func (s *nodeStream) write(conn *websocket.Conn, out *frameSigner, done <-chan struct{}) {
	e := s.n.e
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	for {
		select {
		case <-e.ctx.Done():
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "node closing"), time.Now().Add(time.Second))
			_ = conn.Close()
			return
		case <-done:
			return
		case <-ping.C:
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(streamWriteTimeout)) != nil {
				_ = conn.Close()
				return
			}
			continue
		case <-s.wake:
		}
		s.mu.Lock()
		var frames []streamFrame
		for _, sk := range e.keys {
			if a, ok := s.acks[sk]; ok && a != s.sent[sk] {
				frames = append(frames, streamFrame{Type: frameAck, Key: sk.path, Epoch: a.epoch, Next: a.seq})
				s.sent[sk] = a
			}
		}
		s.mu.Unlock()
		for _, f := range frames {
			body, _ := encodeBody(f)
			if out.write(conn, body) != nil {
				_ = conn.Close()
				return
			}
			e.traffic.sent.Add(int64(len(body)))
		}
	}
}

// applyStream applies, on the run goroutine, the frames of sk the stream received, in
// order, through the pull's apply path (applyRemote): only a frame that continues the
// cursor (same pivot epoch, starting at or before the cursor, the cursor above the
// pivot's horizon) is applied, and only its changes after the cursor, so a change is
// never applied twice nor skipped. A frame that does not continue the cursor (the
// stream was cut, the pivot's data was reset, the node reconciled) is dropped with
// the rest, and the key is pulled instead.
func (n *nodeRole) applyStream(sk *syncKey, cur *cursor) error {
	if n.stream == nil {
		return nil
	}
	for _, f := range n.stream.take(sk) {
		if cur.PivotEpoch == "" || f.Epoch != cur.PivotEpoch || cur.Pull < f.Horizon || f.From > cur.Pull {
			n.request(sk, needPull)
			break
		}
		if f.Next <= cur.Pull {
			continue
		}
		changes := make([]storage.Change, 0, len(f.Changes))
		for _, c := range f.Changes {
			if c.Seq > cur.Pull {
				changes = append(changes, c)
			}
		}
		hold, err := n.applyRemote(sk, changes)
		if err != nil {
			return err
		}
		if hold != nil {
			if *hold > cur.Pull {
				cur.Pull = *hold
				if err := n.markMoved(sk, cur); err != nil {
					return err
				}
			}
			return skewError("stream", sk.path)
		}
		cur.Pull = f.Next
		if err := n.markMoved(sk, cur); err != nil {
			return err
		}
		if f.Head != 0 && f.Head == f.Next {
			n.e.ops.heads.Store(sk, f.Head)
		}
	}
	n.stream.ack(sk, cur)
	return nil
}

// streamStatus reports, on a node, whether its stream is open and since when.
func (n *nodeRole) streamStatus() (bool, time.Time) {
	if n.stream == nil || !n.stream.up.Load() {
		return false, time.Time{}
	}
	return true, time.Unix(0, n.stream.since.Load())
}
