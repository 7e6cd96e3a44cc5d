package pivot_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
)

// fanOutNode is one server of a fan-out benchmark, with a way to wait for a key's next
// storage event (the entry is then readable there).
type fanOutNode struct {
	server *ooo.Server
	result pivot.SetupResult

	mu    sync.Mutex
	waits map[string]chan struct{}
}

// startFanOutNode starts a server on loopback, as the pivot when pivotAddr is "".
func startFanOutNode(b *testing.B, pivotAddr string) *fanOutNode {
	b.Helper()
	n := &fanOutNode{waits: map[string]chan struct{}{}}
	n.server = &ooo.Server{Silence: true, Storage: &ooo.MemoryStorage{}, Pivot: pivotAddr}
	n.server.OnStorageEvent = func(ev ooo.StorageEvent) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if ch, ok := n.waits[ev.Key]; ok {
			close(ch)
			delete(n.waits, ev.Key)
		}
	}
	n.result = pivot.Setup(n.server, pivot.Config{
		Keys:         []pivot.Key{{Path: "users/*"}},
		NodesKey:     "things/*",
		Token:        "bench-token",
		ClusterID:    "bench",
		SyncInterval: -1,
	})
	n.server.BeforeRead = n.result.BeforeRead
	if err := n.server.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		n.server.Close(os.Interrupt)
		n.result.Close()
	})
	return n
}

// next returns a channel closed at the next storage event of k.
func (n *fanOutNode) next(k string) <-chan struct{} {
	ch := make(chan struct{})
	n.mu.Lock()
	n.waits[k] = ch
	n.mu.Unlock()
	return ch
}

// awaitFanOut waits for ch, failing the benchmark after a generous deadline.
func awaitFanOut(b *testing.B, ch <-chan struct{}, what string) {
	b.Helper()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		b.Fatalf("timed out waiting for %s", what)
	}
}

// BenchmarkFanOut measures trigger fan-out: the time from a write on the pivot until
// every one of 1, 10 and 50 nodes holds it (pivot's default FanOut, MemoryStorage).
func BenchmarkFanOut(b *testing.B) {
	for _, count := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("nodes=%d", count), func(b *testing.B) {
			p := startFanOutNode(b, "")
			nodes := make([]*fanOutNode, count)
			for i := range nodes {
				nodes[i] = startFanOutNode(b, p.server.Address)
				id := strings.NewReplacer(".", "-", ":", "-").Replace(nodes[i].server.Address)
				entry := json.RawMessage(fmt.Sprintf(`{"ip":%q}`, nodes[i].server.Address))
				if _, err := p.server.Storage.Set("things/"+id, entry); err != nil {
					b.Fatal(err)
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for len(p.result.Status().Nodes) < count {
				if time.Now().After(deadline) {
					b.Fatal("the pivot did not discover every node")
				}
				time.Sleep(time.Millisecond) // polling with a deadline
			}
			write := func(i int) {
				k := fmt.Sprintf("users/%04d", i%1000)
				arrived := make([]<-chan struct{}, count)
				for j, n := range nodes {
					arrived[j] = n.next(k)
				}
				if _, err := p.server.Storage.Set(k, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
					b.Fatal(err)
				}
				for j, ch := range arrived {
					awaitFanOut(b, ch, fmt.Sprintf("%s on node %d", k, j))
				}
			}
			for i := range 10 { // connections and first syncs
				write(i)
			}
			i := 10
			for b.Loop() {
				write(i)
				i++
			}
		})
	}
}
