package pivot

import (
	"crypto/hmac"
	"encoding/hex"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The pivot's side of the live stream. A node keeps one websocket open to the pivot
// (stream_node.go); the pivot keeps, per stream, where the node's pull cursor of each
// key stands (as the node acknowledged it, moved on by the frames sent since), and
// after every change of a key sends each node the changes after its position, read
// from the feed once for every group of nodes at the same position and encoded once.
// A node of unknown position (just connected, another epoch, below the horizon), a
// change set too big to inline, a node too far behind, and a node whose queue is full
// get a poke instead, and pull. The pivot never waits for a node: frames are queued
// per node and written by the node's own goroutine; past streamQueueBytes the queue
// is dropped for one poke per key.
//
// The node applies a frame only when it continues its cursor (see applyStream), so
// whatever the pivot believes about a node's position, no change is applied twice or
// skipped: a wrong belief costs a pull, never data.

// streamHub is every stream open to the pivot. Safe for concurrent use.
type streamHub struct {
	e    *syncEngine
	once sync.Once // starts run on the first stream
	wake chan struct{}
	open atomic.Int64 // streams open, read without the lock by changed

	mu       sync.Mutex
	sessions map[*streamSession]struct{}
	byAddr   map[string]int // node addresses with a stream open (how many)
	dirty    map[*syncKey]struct{}
	casting  map[*syncKey]*sync.Mutex // one cast of a key at a time, in feed order

	upgrader websocket.Upgrader
}

// newStreamHub makes the stream side of the pivot e.
func newStreamHub(e *syncEngine) *streamHub {
	return &streamHub{
		e:        e,
		wake:     make(chan struct{}, 1),
		sessions: map[*streamSession]struct{}{},
		byAddr:   map[string]int{},
		dirty:    map[*syncKey]struct{}{},
		casting:  map[*syncKey]*sync.Mutex{},
		upgrader: websocket.Upgrader{
			HandshakeTimeout: e.cfg.RequestTimeout,
			// Acks are small; frames are written through a shared pool, so an idle
			// stream holds no write buffer.
			ReadBufferSize:  1024,
			WriteBufferPool: &sync.Pool{},
			// Nodes send no Origin; a browser always does, and has no business here.
			CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "" },
		},
	}
}

// streamSession is one node's open stream.
type streamSession struct {
	hub   *streamHub
	conn  *websocket.Conn
	name  string // HeaderNode of the upgrade
	addr  string // the name as NodesKey addresses are keyed (see streamAddr)
	since time.Time

	out, in frameSigner // out: owned by the writer goroutine; in: by the reader

	lastContact atomic.Int64 // unix ns of the last message from the node
	degraded    atomic.Int64 // times the queue overflowed and became pokes
	frames      atomic.Int64 // change frames written
	pokesSent   atomic.Int64 // pokes written

	done      chan struct{}
	closeOnce sync.Once
	wake      chan struct{} // capacity 1

	mu      sync.Mutex
	pos     map[*syncKey]streamPos // where the node stands, when known
	queue   [][]byte               // change frames to write, in order
	queued  int
	pokes   map[*syncKey]struct{}
	pokeAll bool
}

// streamPos is a node's pull cursor of one key, as the pivot knows it.
type streamPos struct {
	epoch string
	seq   uint64
}

// handleStream upgrades a node's authenticated request (the guard checked its proof)
// to its live stream, and answers the upgrade signed over the request's proof.
func (e *syncEngine) handleStream(w http.ResponseWriter, r *http.Request) {
	hub := e.pivotRole.streams
	if e.cfg.DisableStream {
		writeError(w, http.StatusNotFound, codeNotFound, "the live stream is off on this pivot (Config.DisableStream)")
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		writeError(w, http.StatusBadRequest, codeBadRequest, "the stream route takes a websocket upgrade")
		return
	}
	raw, header := w, http.Header{}
	aw, signed := w.(answerWriter)
	if signed {
		raw = aw.ResponseWriter
		if aw.secret != nil {
			header.Set(HeaderSignature, hex.EncodeToString(answerMAC(aw.secret, aw.proof, http.StatusSwitchingProtocols, nil)))
		}
	}
	conn, err := hub.upgrader.Upgrade(raw, r, header)
	if err != nil {
		return // the upgrader answered the error
	}
	name := r.Header.Get(HeaderNode)
	s := &streamSession{
		hub: hub, conn: conn, name: name, addr: streamAddr(name, r.RemoteAddr), since: time.Now(),
		out:  frameSigner{secret: aw.secret, proof: aw.proof, dir: toNode},
		in:   frameSigner{secret: aw.secret, proof: aw.proof, dir: toPivot},
		done: make(chan struct{}), wake: make(chan struct{}, 1),
		pos: map[*syncKey]streamPos{}, pokes: map[*syncKey]struct{}{},
	}
	s.lastContact.Store(time.Now().UnixNano())
	conn.SetReadLimit(streamAckLimit)
	hub.once.Do(func() { e.spawn(hub.run) })
	hub.add(s)
	if !e.spawn(s.read) || !e.spawn(s.write) {
		s.close()
	}
	if rn := e.pivotRole.identify(r); rn != nil {
		e.pivotRole.contact(rn, false)
	}
	e.log.Debug("pivot: stream opened", "node", name)
}

// streamAddr is the address a node's name stands for, as NodesKey addresses are
// keyed: host:port, with an unspecified host replaced by the address the request
// came from (as identify does).
func streamAddr(name, remote string) string {
	_, addr, err := splitAddress(name)
	if err != nil {
		return name
	}
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if rh, _, err := net.SplitHostPort(remote); err == nil {
			return net.JoinHostPort(rh, port)
		}
	}
	return addr
}

// add registers s.
func (h *streamHub) add(s *streamSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sessions[s] = struct{}{}
	h.byAddr[s.addr]++
	h.open.Add(1)
}

// remove forgets s.
func (h *streamHub) remove(s *streamSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.sessions[s]; !ok {
		return
	}
	delete(h.sessions, s)
	if h.byAddr[s.addr]--; h.byAddr[s.addr] <= 0 {
		delete(h.byAddr, s.addr)
	}
	h.open.Add(-1)
}

// connected reports whether the node at addr (a NodesKey address) has a stream open:
// then it needs no trigger.
func (h *streamHub) connected(addr string) bool {
	if h == nil || h.open.Load() == 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byAddr[addr] > 0
}

// list returns the open streams.
func (h *streamHub) list() []*streamSession {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*streamSession, 0, len(h.sessions))
	for s := range h.sessions {
		out = append(out, s)
	}
	return out
}

// changed is called for every change of sk on the pivot, on the storage's event
// goroutine: it queues the change for every open stream at once (reading the feed and
// taking short locks, never waiting for a node), so a frame leaves one goroutine hop
// after the write. It never blocks on the network.
func (h *streamHub) changed(sk *syncKey) {
	if h == nil || h.open.Load() == 0 || !sk.db.Active() {
		return
	}
	h.cast(sk)
}

// recheck asks run to look at sk again (after an ack: a change may have come between
// the node's read and its ack). It never blocks.
func (h *streamHub) recheck(sk *syncKey) {
	h.mu.Lock()
	h.dirty[sk] = struct{}{}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run casts the keys recheck asked for, until the engine stops.
func (h *streamHub) run() {
	for {
		select {
		case <-h.e.ctx.Done():
			return
		case <-h.wake:
		}
		h.mu.Lock()
		dirty := h.dirty
		h.dirty = map[*syncKey]struct{}{}
		h.mu.Unlock()
		for sk := range dirty {
			if sk.db.Active() {
				h.cast(sk)
			}
		}
	}
}

// castLock returns the lock that keeps casts of sk one at a time: a stream's position
// moves with each frame queued, so two casts at once would queue the same changes
// twice (harmless to the node, which skips them, but wasted).
func (h *streamHub) castLock(sk *syncKey) *sync.Mutex {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.casting[sk]
	if m == nil {
		m = &sync.Mutex{}
		h.casting[sk] = m
	}
	return m
}

// cast queues, for every open stream, the changes of sk after the node's position,
// or a poke.
func (h *streamHub) cast(sk *syncKey) {
	lock := h.castLock(sk)
	lock.Lock()
	defer lock.Unlock()
	epoch, horizon := sk.rep.Epoch(), sk.rep.Horizon()
	groups := map[uint64][]*streamSession{}
	for _, s := range h.list() {
		s.mu.Lock()
		p, ok := s.pos[sk]
		s.mu.Unlock()
		if !ok || p.epoch != epoch || p.seq < horizon {
			s.poke(sk)
			continue
		}
		groups[p.seq] = append(groups[p.seq], s)
	}
	for from, group := range groups {
		h.castGroup(sk, epoch, horizon, from, group)
	}
}

// castGroup queues, for a group of streams at one position of sk, the changes after
// it: read and encoded once for the group, in frames of at most streamInlineChanges
// changes and streamInlineBytes bytes of entries, at most streamFramesPerCast of them.
// A group further behind than that, or a feed that cannot be read, gets a poke.
func (h *streamHub) castGroup(sk *syncKey, epoch string, horizon, from uint64, group []*streamSession) {
	at := from
	for range streamFramesPerCast {
		page, err := readFeed(sk, at, streamInlineChanges, streamInlineBytes, nil)
		if err != nil || sk.rep.Epoch() != epoch {
			break
		}
		if len(page.changes) == 0 {
			return
		}
		f := streamFrame{Type: frameChanges, Key: sk.path, Epoch: epoch, Horizon: horizon,
			From: at, Next: page.next, Head: page.head, Changes: page.changes}
		if page.more {
			f.Head = 0
		}
		body, err := encodeBody(f)
		if err != nil {
			break
		}
		h.e.counts.served.Add(int64(len(page.changes) * len(group)))
		for _, s := range group {
			s.send(sk, streamPos{epoch, at}, page.next, body)
		}
		if !page.more {
			return
		}
		at = page.next
	}
	for _, s := range group {
		s.poke(sk)
	}
}

// send queues a change frame for sk read from position from up to next, unless the
// node's position moved meanwhile to where the frame does not apply (then its own
// pull or the next frame covers it). A full queue becomes pokes.
func (s *streamSession) send(sk *syncKey, from streamPos, next uint64, body []byte) {
	s.mu.Lock()
	p, ok := s.pos[sk]
	switch {
	case !ok || p.epoch != from.epoch || p.seq < from.seq:
		s.mu.Unlock()
		return
	case s.queued+len(body) > streamQueueBytes:
		s.degradeLocked()
	default:
		s.queue = append(s.queue, body)
		s.queued += len(body)
		s.pos[sk] = streamPos{p.epoch, max(p.seq, next)}
	}
	s.mu.Unlock()
	s.signal()
}

// degradeLocked drops the queued frames of a node that reads slower than the pivot
// writes: it pulls every key instead, and its positions are unknown until it
// acknowledges them again. s.mu is held.
func (s *streamSession) degradeLocked() {
	s.queue, s.queued = nil, 0
	s.pos = map[*syncKey]streamPos{}
	s.pokeAll = true
	s.degraded.Add(1)
}

// poke queues a poke for sk: the node pulls it. Its position is unknown until it
// acknowledges again.
func (s *streamSession) poke(sk *syncKey) {
	s.mu.Lock()
	delete(s.pos, sk)
	s.pokes[sk] = struct{}{}
	s.mu.Unlock()
	s.signal()
}

// signal wakes the writer.
func (s *streamSession) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close ends the stream: both goroutines stop and the hub forgets it.
func (s *streamSession) close() {
	s.closeOnce.Do(func() {
		close(s.done)
		_ = s.conn.Close()
		s.hub.remove(s)
		s.hub.e.log.Debug("pivot: stream closed", "node", s.name)
		s.hub.fallBack(s.addr)
	})
}

// fallBack, once the last stream of the node at addr closed, triggers it if NodesKey
// names it: from now on it is dialled as before, starting with the changes the
// stream may not have delivered (the node also pulls when it reconnects). A node
// that is down shows so at once, as the trigger fails.
func (h *streamHub) fallBack(addr string) {
	if h.e.ctx.Err() != nil || h.connected(addr) {
		return
	}
	p := h.e.pivotRole
	p.mu.Lock()
	rn := p.nodes[addr]
	p.mu.Unlock()
	if rn != nil {
		p.trigger(rn, nil)
	}
}

// write is the stream's writer: it writes the queued frames, then the pokes, and pings
// an idle stream. When the engine stops it says goodbye and closes the stream.
func (s *streamSession) write() {
	defer s.close()
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	for {
		select {
		case <-s.hub.e.ctx.Done():
			_ = s.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "pivot closing"), time.Now().Add(time.Second))
			return
		case <-s.done:
			return
		case <-ping.C:
			if !s.current() || s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(streamWriteTimeout)) != nil {
				return
			}
			continue
		case <-s.wake:
		}
		if !s.current() {
			return
		}
		s.mu.Lock()
		queue, pokes, all := s.queue, s.pokes, s.pokeAll
		s.queue, s.queued, s.pokes, s.pokeAll = nil, 0, map[*syncKey]struct{}{}, false
		s.mu.Unlock()
		for _, body := range queue {
			if s.out.write(s.conn, body) != nil {
				return
			}
			s.frames.Add(1)
			s.hub.e.traffic.sent.Add(int64(len(body)))
		}
		var keys []string
		if all {
			keys = []string{""}
		} else {
			for sk := range pokes {
				keys = append(keys, sk.path)
			}
			sort.Strings(keys)
		}
		for _, k := range keys {
			body, _ := encodeBody(streamFrame{Type: framePoke, Key: k})
			if s.out.write(s.conn, body) != nil {
				return
			}
			s.pokesSent.Add(1)
			s.hub.e.traffic.sent.Add(int64(len(body)))
		}
	}
}

// current reports whether the secret the stream was opened with is still accepted: a
// stream opened before a rotation ends with the overlap (the node opens another with
// the new secret and pulls), so a retired secret grants nothing for long.
func (s *streamSession) current() bool {
	if s.out.secret == nil {
		return true
	}
	for _, k := range s.hub.e.secrets.secrets(time.Now()) {
		if hmac.Equal(k, s.out.secret) {
			return true
		}
	}
	s.hub.e.log.Info("pivot: stream closed: its secret was retired", "node", s.name)
	return false
}

// read is the stream's reader: it takes the node's acks until the stream ends. A
// frame that fails its check, or says nothing valid, ends the stream.
func (s *streamSession) read() {
	defer s.close()
	alive := func() {
		s.lastContact.Store(time.Now().UnixNano())
		_ = s.conn.SetReadDeadline(time.Now().Add(streamIdle))
	}
	alive()
	s.conn.SetPongHandler(func(string) error { alive(); return nil })
	s.conn.SetPingHandler(func(data string) error {
		alive()
		return s.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(streamWriteTimeout))
	})
	for {
		kind, msg, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		s.hub.e.traffic.received.Add(int64(len(msg)))
		var f streamFrame
		if kind != websocket.TextMessage {
			s.hub.e.log.Warn("pivot: stream closed: binary message", "node", s.name)
			return
		}
		if err := s.in.check(msg, &f); err != nil {
			s.hub.e.log.Warn("pivot: stream closed", "node", s.name, "err", err)
			return
		}
		sk := s.hub.e.keyByPath(f.Key)
		if f.Type != frameAck || sk == nil || len(f.Epoch) > 256 || len(f.Changes) > 0 {
			s.hub.e.log.Warn("pivot: stream closed: unexpected frame", "node", s.name, "type", f.Type, "key", f.Key)
			return
		}
		alive()
		s.ack(sk, streamPos{f.Epoch, f.Next})
	}
}

// ack records where the node says its cursor of sk stands. A position behind the one
// the frames already sent lead to is stale (those frames are on their way) and kept
// only when the pivot knew none; the first ack of a key after a poke makes the node's
// position known again, and a change since then reaches it as a frame (or a poke,
// when it does not continue from there).
func (s *streamSession) ack(sk *syncKey, at streamPos) {
	s.mu.Lock()
	p, ok := s.pos[sk]
	if !ok || p.epoch != at.epoch || at.seq > p.seq {
		s.pos[sk] = at
	}
	s.mu.Unlock()
	// A change may have reached the feed after the node read it and before this ack:
	// look again, so it is sent now rather than at the next change.
	if sk.db.Active() {
		if changes, _, err := sk.rep.Changes(sk.path, at.seq, 1); err == nil && len(changes) > 0 {
			s.hub.recheck(sk)
		}
	}
}

// upToDate reports whether every change of every synced key in the pivot's feed was
// sent to the node (or the node acknowledged holding it), as far as the pivot knows.
func (s *streamSession) upToDate() bool {
	for _, sk := range s.hub.e.keys {
		if !sk.db.Active() {
			return false
		}
		s.mu.Lock()
		p, known := s.pos[sk]
		s.mu.Unlock()
		if !known || p.epoch != sk.rep.Epoch() {
			return false
		}
		changes, _, err := sk.rep.Changes(sk.path, p.seq, 1)
		if err != nil || len(changes) > 0 {
			return false
		}
	}
	return true
}

// status adds the open streams to the nodes of nodeStatus: a node known from NodesKey
// is marked as connected by stream, and a node with a stream but no NodesKey entry is
// listed by the name it sent.
func (h *streamHub) status(nodes []NodeStatus) []NodeStatus {
	sessions := h.list()
	if len(sessions) == 0 {
		return nodes
	}
	index := make(map[string]int, len(nodes))
	for i, ns := range nodes {
		index[ns.Address] = i
	}
	for _, s := range sessions {
		contact := time.Unix(0, s.lastContact.Load())
		i, ok := index[s.addr]
		if !ok {
			nodes = append(nodes, NodeStatus{Address: s.addr, Healthy: true})
			i = len(nodes) - 1
			index[s.addr] = i
		}
		ns := &nodes[i]
		ns.Stream, ns.Healthy = true, true
		if ns.StreamSince.IsZero() || s.since.Before(ns.StreamSince) {
			ns.StreamSince = s.since
		}
		if contact.After(ns.LastContact) {
			ns.LastContact = contact
		}
		if s.upToDate() {
			ns.UpToDate, ns.Lag, ns.LagText = true, 0, ""
		}
		ns.StreamFrames += s.frames.Load()
		ns.StreamPokes += s.pokesSent.Load()
		ns.StreamDegraded += s.degraded.Load()
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Address < nodes[j].Address })
	return nodes
}
