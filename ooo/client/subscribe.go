package client

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo/messages"
)

// DefaultHandshakeTimeout bounds each websocket opening handshake made by Subscribe.
// It is a constant on purpose: a package variable would be global mutable state that
// any importer could change under every other subscriber.
const DefaultHandshakeTimeout = 2 * time.Second

// Reconnect schedule: after the nth consecutive failure (a failed dial, a dropped
// connection or a message that cannot be applied) Subscribe waits
// ReconnectFast for n < 30, ReconnectSlow for n < 100, and ReconnectIdle after that.
// A message applied successfully resets the count.
const (
	ReconnectFast = 300 * time.Millisecond
	ReconnectSlow = 2 * time.Second
	ReconnectIdle = 10 * time.Second
)

// closeWriteTimeout bounds the close frame Subscribe sends when its context ends.
const closeWriteTimeout = time.Second

// errNoSnapshot reports a patch that arrived before any snapshot: there is nothing to
// apply it to, so the subscription reconnects to get a fresh snapshot.
var errNoSnapshot = errors.New("client: patch before any snapshot")

// backoff returns the wait after the given number of consecutive failures (>= 1).
func backoff(failures int) time.Duration {
	switch {
	case failures < 30:
		return ReconnectFast
	case failures < 100:
		return ReconnectSlow
	default:
		return ReconnectIdle
	}
}

// URL returns the address of path on the server at host: protocol://host/path, the
// websocket address Subscribe dials ("ws", "wss") and the one package io calls
// ("http", "https"). A leading '/' on path is optional.
func URL(protocol, host, path string) string {
	return protocol + "://" + host + "/" + strings.TrimPrefix(path, "/")
}

// Subscribe follows the value at path on the ooo server at host and calls cb once per
// message the server sends, with the whole current state (see OnMessageCallback).
// protocol is "ws" or "wss"; header entries are sent with the handshake (use it for
// Authorization, or Sec-WebSocket-Protocol: bearer, <token>).
//
// Every connection starts with the server's snapshot, so the first callback comes as
// soon as the subscription is open, even for an empty list (an empty slice) or a missing
// key (one Meta with Created 0, Index "" and Data decoded from "{}"). Every later message,
// an empty patch included, gives one more callback.
//
// Subscribe blocks until ctx is cancelled. It reconnects after a failed dial, a dropped
// connection or a message it cannot apply, waiting as the Reconnect constants say; the
// snapshot of each new connection gives one callback. When ctx is cancelled the
// connection is closed and Subscribe returns; cb is never called after it returns.
// cb runs on Subscribe's goroutine, so a slow cb delays reading.
func Subscribe[T any](ctx context.Context, protocol, host, path string, header http.Header, cb OnMessageCallback[T]) {
	dialer := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: DefaultHandshakeTimeout,
	}
	address := URL(protocol, host, path)
	failures := 0
	for ctx.Err() == nil {
		conn, resp, err := dialer.DialContext(ctx, address, header)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err == nil {
			if follow(ctx, conn, cb) {
				failures = 0
			}
		}
		failures++
		if !wait(ctx, backoff(failures)) {
			return
		}
	}
}

// follow reads one connection until it fails or ctx ends, calling cb per message. It
// reports whether at least one message was applied.
func follow[T any](ctx context.Context, conn *websocket.Conn, cb OnMessageCallback[T]) (applied bool) {
	done := make(chan struct{})
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		select {
		case <-ctx.Done():
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWriteTimeout))
		case <-done:
		}
		conn.Close()
	}()
	defer func() {
		close(done)
		<-closed
	}()

	var st state[T]
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return applied
		}
		msg, err := messages.DecodeBuffer(data)
		if err != nil {
			return applied
		}
		if err := st.apply(msg); err != nil {
			return applied
		}
		applied = true
		view, err := st.view()
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil || ctx.Err() != nil {
			return applied
		}
		cb(view)
	}
}

// wait sleeps for d unless ctx ends first; it reports whether ctx is still live.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
