package stream

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo/messages"
)

// closeGrace bounds how long writing a close frame may take.
const closeGrace = time.Second

// maxCloseReason is the longest close reason that fits a websocket control frame.
const maxCloseReason = 123

// Conn is one websocket connection of a Stream. Messages for it wait in a bounded send
// queue drained by the connection's own writer goroutine, so queueing never blocks the
// caller and a slow client never delays the others.
type Conn struct {
	key          string
	ws           *websocket.Conn
	writeTimeout time.Duration
	maxQueue     int

	mu     sync.Mutex
	queue  []*message
	closed bool

	// wake holds one token when the queue has news for the writer, or when the
	// connection was shut down (the writer then finds closed set).
	wake chan struct{}
	once sync.Once
}

func newConn(ws *websocket.Conn, key string, writeTimeout time.Duration, maxQueue int) *Conn {
	return &Conn{
		key:          key,
		ws:           ws,
		writeTimeout: writeTimeout,
		maxQueue:     maxQueue,
		wake:         make(chan struct{}, 1),
	}
}

// Key returns the subscription key of the connection ("" for the clock). Safe for
// concurrent use.
func (c *Conn) Key() string { return c.key }

// message is one message queued for clients; it is shared by every client of a pool
// and never modified.
type message struct {
	frame   []byte // the encoded frame
	version string // the version after it (patches only)
	patch   []byte // the JSON Patch a patch frame carries; nil for a snapshot or a clock tick
	// shared marks a message queued for more than one client: its websocket frame
	// (header and payload) is then built once, by the first writer that sends it, and
	// every other client's writer sends those bytes as they are.
	shared   bool
	prepOnce sync.Once
	prepared *websocket.PreparedMessage
	prepErr  error
}

// newMessage is a message for n clients.
func newMessage(frame []byte, version string, patch []byte, n int) *message {
	return &message{frame: frame, version: version, patch: patch, shared: n > 1}
}

// write sends m on ws as one binary frame.
func (m *message) write(ws *websocket.Conn) error {
	if !m.shared {
		return ws.WriteMessage(websocket.BinaryMessage, m.frame)
	}
	m.prepOnce.Do(func() {
		m.prepared, m.prepErr = websocket.NewPreparedMessage(websocket.BinaryMessage, m.frame)
	})
	if m.prepErr != nil {
		return m.prepErr
	}
	return ws.WritePreparedMessage(m.prepared)
}

// enqueue queues msg for sending and never blocks. When the queue already holds
// maxQueue messages the client is behind: everything queued is dropped and replaced by
// resync(), a message that alone brings the client to the state reached after msg.
func (c *Conn) enqueue(msg *message, resync func() *message) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if len(c.queue) >= c.maxQueue {
		c.queue = append(c.queue[:0:0], resync())
	} else {
		c.queue = append(c.queue, msg)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeLoop sends queued messages until the connection is shut down. Every frame has
// its own write deadline; a failed write shuts the connection down. What queued up
// while the previous frames were written goes out coalesced (see coalesce). The loop
// keeps two queue buffers and swaps them, so a steady stream of messages allocates
// nothing per message.
func (c *Conn) writeLoop() {
	var spare []*message
	out := make([]*message, 0, 2)
	for range c.wake {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = spare
		c.mu.Unlock()
		out = coalesce(out[:0], batch)
		for _, m := range out {
			if err := c.ws.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
				c.shutdown(0, "")
				return
			}
			if err := m.write(c.ws); err != nil {
				c.shutdown(0, "")
				return
			}
		}
		clear(out)
		clear(batch)
		spare = batch[:0]
	}
}

// coalesce appends to out the fewest messages that bring a client waiting for batch to
// the same state: nothing before the last snapshot (or clock tick) matters, since that
// message alone holds the value, and the patches after it go as one patch holding all
// their operations in order, with the last version. Messages sent as they are keep
// their shared frame; a merged patch is a new frame of this client's own.
func coalesce(out, batch []*message) []*message {
	start := 0
	for i, m := range batch {
		if m.patch == nil {
			start = i
		}
	}
	batch = batch[start:]
	if len(batch) > 0 && batch[0].patch == nil {
		out = append(out, batch[0])
		batch = batch[1:]
	}
	switch len(batch) {
	case 0:
	case 1:
		out = append(out, batch[0])
	default:
		size := 2
		for _, m := range batch {
			size += len(m.patch)
		}
		ops := make([]byte, 0, size)
		ops = append(ops, '[')
		for _, m := range batch {
			inner := m.patch[1 : len(m.patch)-1]
			if len(inner) == 0 {
				continue
			}
			if len(ops) > 1 {
				ops = append(ops, ',')
			}
			ops = append(ops, inner...)
		}
		ops = append(ops, ']')
		last := batch[len(batch)-1].version
		out = append(out, newMessage(messages.Encode(false, last, ops), last, ops, 1))
	}
	return out
}

// readLoop reads and discards client frames until the connection fails or is closed.
func (c *Conn) readLoop(limit int64) {
	c.ws.SetReadLimit(limit)
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
	}
}

// shutdown closes the connection once: with a close frame carrying code and reason
// when code is not 0, then the network connection itself. Safe to call concurrently.
func (c *Conn) shutdown(code int, reason string) {
	c.shutdownBy(code, reason, time.Now().Add(closeGrace))
}

// shutdownBy is shutdown with the close frame's write bounded by deadline, so that many
// connections can share one deadline.
func (c *Conn) shutdownBy(code int, reason string, deadline time.Time) {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.queue = nil
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default: // a token is already waiting; the writer will find closed set
		}
		if code != 0 {
			if len(reason) > maxCloseReason {
				reason = reason[:maxCloseReason]
			}
			// Best effort: the peer may already be gone.
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
		}
		_ = c.ws.Close()
	})
}
