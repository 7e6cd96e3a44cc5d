package ooo_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/messages"
)

// dialOrigin opens a websocket to path on s with the given Origin header, using gorilla's
// dialer directly (as a browser would, it sends Origin on every upgrade).
func dialOrigin(t *testing.T, s *ooo.Server, path, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	header := http.Header{}
	if origin != "" {
		header.Set("Origin", origin)
	}
	c, res, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+s.Address+path, header)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, res, err
}

// TestServer_WebsocketSameOrigin: with AllowedOrigins set, a page served by the server
// itself (Origin equal to the server's own host) can subscribe, on a key and on the
// clock; other origins not listed are still refused, a different port included.
func TestServer_WebsocketSameOrigin(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.AllowedOrigins = []string{"https://app.example"}
		s.Tick = 10 * time.Millisecond
	})
	if _, err := s.Storage.Set("thing", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	self := "http://" + s.Address

	c, _, err := dialOrigin(t, s, "/thing", self)
	if err != nil {
		t.Fatalf("same-origin subscription refused: %v", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, frame, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read first message: %v", err)
	}
	msg, err := messages.DecodeBuffer(frame)
	if err != nil || !msg.Snapshot {
		t.Fatalf("first message %q: %v", frame, err)
	}

	clock, _, err := dialOrigin(t, s, "/", self)
	if err != nil {
		t.Fatalf("same-origin clock socket refused: %v", err)
	}
	if err := clock.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := clock.ReadMessage(); err != nil {
		t.Fatalf("read clock: %v", err)
	}

	// The host part is compared without regard to case, as hosts are.
	if _, _, err := dialOrigin(t, s, "/thing", "HTTP://"+s.Address); err != nil {
		t.Fatalf("same origin in upper case refused: %v", err)
	}
	if _, _, err := dialOrigin(t, s, "/thing", "https://app.example"); err != nil {
		t.Fatalf("listed origin refused: %v", err)
	}
	if _, _, err := dialOrigin(t, s, "/thing", ""); err != nil {
		t.Fatalf("no origin (a non-browser client) refused: %v", err)
	}
	for _, origin := range []string{"https://evil.example", "http://127.0.0.1:1", "null", "http://" + s.Address + ".evil.example"} {
		_, res, err := dialOrigin(t, s, "/thing", origin)
		if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q: got %v, want 403", origin, err)
		}
	}

	// A plain request from the same origin was already served; it still is.
	if res := do(t, s, "GET", "/thing", "", http.Header{"Origin": {self}}); res.status != http.StatusOK {
		t.Fatalf("same-origin GET: %d", res.status)
	}
}
