package pivot

import (
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/benitogf/pivot/ooo"
)

// TestStream_NodeTrustsNoUnverifiedFrame: a node whose pivot address leads to an
// impostor applies nothing it is sent on a stream: not when the upgrade answer is not
// signed (an address that does not hold the secret), and not when frames that fail
// their check follow a well-signed upgrade (bytes injected into the connection): it
// closes the stream each time.
func TestStream_NodeTrustsNoUnverifiedFrame(t *testing.T) {
	const token = "s3cret-token-for-tests"
	evil := `{"type":"changes","key":"users/*","epoch":"e","from":0,"next":9,"head":9,"changes":[{"key":"users/evil","created":1,"data":{"x":1},"seq":1}]}`
	cases := map[string]struct {
		signUpgrade bool
		frame       func(proof string) []byte
	}{
		"unsigned upgrade": {false, func(string) []byte { return []byte("\n" + evil) }},
		"unsigned frame":   {true, func(string) []byte { return []byte("\n" + evil) }},
		"frame signed with another secret": {true, func(proof string) []byte {
			return []byte(hex.EncodeToString(streamMAC([]byte("another-secret-16+ch"), proof, toNode, 1, []byte(evil))) + "\n" + evil)
		}},
		"frame numbered out of order": {true, func(proof string) []byte {
			return []byte(hex.EncodeToString(streamMAC([]byte(token), proof, toNode, 2, []byte(evil))) + "\n" + evil)
		}},
		"frame signed as the node's": {true, func(proof string) []byte {
			return []byte(hex.EncodeToString(streamMAC([]byte(token), proof, toPivot, 1, []byte(evil))) + "\n" + evil)
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			closed := make(chan struct{}, 16)
			up := websocket.Upgrader{}
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			require.NoError(t, err)
			fake := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, routeStream) {
					http.Error(w, "impostor", http.StatusServiceUnavailable)
					return
				}
				proof := r.Header.Get(HeaderSignature)
				h := http.Header{}
				if tc.signUpgrade {
					h.Set(HeaderSignature, hex.EncodeToString(answerMAC([]byte(token), proof, http.StatusSwitchingProtocols, nil)))
				}
				conn, err := up.Upgrade(w, r, h)
				if err != nil {
					return
				}
				defer conn.Close()
				_ = conn.WriteMessage(websocket.TextMessage, tc.frame(proof))
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						closed <- struct{}{} // the node closed the stream
						return
					}
				}
			})}
			go func() { _ = fake.Serve(ln) }()
			t.Cleanup(func() { _ = fake.Close() })

			db := &ooo.MemoryStorage{}
			server := &ooo.Server{Silence: true, Storage: db, Pivot: ln.Addr().String()}
			Setup(server, Config{Keys: []Key{{Path: "users/*"}}, Token: token, ClusterID: "test-cluster",
				SyncInterval: -1, RepairInterval: -1, ReadBudget: -1, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond})
			require.NoError(t, server.Start("127.0.0.1:0"))
			t.Cleanup(func() { server.Close(os.Interrupt) })
			for range 3 { // three streams in a row, each closed by the node
				select {
				case <-closed:
				case <-time.After(15 * time.Second):
					t.Fatal("the node did not close the stream")
				}
			}
			_, err = db.Get("users/evil")
			require.Error(t, err, "nothing applied from an unverified frame")
		})
	}
}

// TestStream_CloseLeavesNoGoroutine: closing the servers ends every goroutine of the
// stream on both sides (the pivot's reader, writer and hub, the node's session and
// writer), whichever closes first.
func TestStream_CloseLeavesNoGoroutine(t *testing.T) {
	for _, first := range []string{"pivot", "node"} {
		t.Run(first+" first", func(t *testing.T) {
			cfg := streamTestConfig()
			pivotServer, pivotResult := startStreamPivot(t, cfg)
			node := &ooo.Server{Silence: true, Storage: &ooo.MemoryStorage{}, Pivot: pivotServer.Address}
			nodeResult := Setup(node, cfg)
			require.NoError(t, node.Start("127.0.0.1:0"))
			streamEventually(t, func() bool { return acked(pivotResult, 1) && nodeResult.Status().Stream }, "the stream open")
			_, err := pivotServer.Storage.Set("users/x", []byte(`{"x":1}`))
			require.NoError(t, err)
			streamEventually(t, func() bool { _, err := node.Storage.Get("users/x"); return err == nil }, "the write on the node")
			if first == "pivot" {
				pivotServer.Close(os.Interrupt)
				node.Close(os.Interrupt)
			} else {
				node.Close(os.Interrupt)
				pivotServer.Close(os.Interrupt)
			}
			streamEventually(t, func() bool { return !streamGoroutines() }, "no stream goroutine left:\n%s", allStacks())
		})
	}
}

// streamGoroutines reports whether a goroutine runs code of the stream.
func streamGoroutines() bool {
	s := allStacks()
	for _, fn := range []string{"pivot.(*streamSession)", "pivot.(*streamHub)", "pivot.(*nodeStream)"} {
		if strings.Contains(s, fn) {
			return true
		}
	}
	return false
}

// allStacks returns the stacks of every goroutine.
func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
