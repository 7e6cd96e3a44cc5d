package ooo_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/internal/testcert"
	"github.com/benitogf/pivot/ooo"
)

// A server with TLSConfig serves REST and websockets over TLS only.
func TestTLS_ServesHTTPSAndSecureWebsockets(t *testing.T) {
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s := &ooo.Server{Silence: true, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(nil) })
	trusting := &tls.Config{RootCAs: ca.Pool}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: trusting}}
	t.Cleanup(client.CloseIdleConnections)

	resp, err := client.Post("https://"+s.Address+"/doc", "application/json", strings.NewReader(`{"over":"tls"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST over TLS: %s", resp.Status)
	}
	dialer := websocket.Dialer{TLSClientConfig: trusting}
	ws, _, err := dialer.Dial("wss://"+s.Address+"/doc", nil)
	if err != nil {
		t.Fatalf("wss subscribe: %v", err)
	}
	defer ws.Close()
	_, first, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(first), "over") {
		t.Fatalf("first message over wss lacks the value: %s", first)
	}

	// Plain HTTP gets no answer it can use, and an untrusted certificate is refused.
	if resp, err := http.Get("http://" + s.Address + "/doc"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP was served: %s", b)
		}
	}
	if _, err := http.Get("https://" + s.Address + "/doc"); err == nil {
		t.Fatal("a client that does not trust the CA connected")
	}
}
