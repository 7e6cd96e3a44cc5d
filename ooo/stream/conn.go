package stream

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
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
	queue  [][]byte
	closed bool

	wake chan struct{}
	done chan struct{}
	once sync.Once
}

func newConn(ws *websocket.Conn, key string, writeTimeout time.Duration, maxQueue int) *Conn {
	return &Conn{
		key:          key,
		ws:           ws,
		writeTimeout: writeTimeout,
		maxQueue:     maxQueue,
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
}

// Key returns the subscription key of the connection ("" for the clock). Safe for
// concurrent use.
func (c *Conn) Key() string { return c.key }

// enqueue queues msg for sending and never blocks. When the queue already holds
// maxQueue messages the client is behind: everything queued is dropped and replaced by
// resync(), a message that alone brings the client to the state reached after msg.
func (c *Conn) enqueue(msg []byte, resync func() []byte) {
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
// its own write deadline; a failed write shuts the connection down.
func (c *Conn) writeLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		for _, msg := range batch {
			if err := c.ws.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
				c.shutdown(0, "")
				return
			}
			if err := c.ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				c.shutdown(0, "")
				return
			}
		}
	}
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
		close(c.done)
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
