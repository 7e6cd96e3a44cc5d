package pivot

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStreamHelperClients is not a test of its own: BenchmarkStream_PivotMemoryPerNode
// runs the test binary again with it, so the streams' client side lives in another
// process and the benchmark's memory figures are the pivot's alone. It opens
// PIVOT_STREAM_CLIENTS streams to the pivot at PIVOT_STREAM_HELPER, acknowledges a
// position on each, reads them as a node would, says "ready" and holds them until its
// standard input closes.
func TestStreamHelperClients(t *testing.T) {
	addr := os.Getenv("PIVOT_STREAM_HELPER")
	if addr == "" {
		t.Skip("the helper process of BenchmarkStream_PivotMemoryPerNode")
	}
	n, err := strconv.Atoi(os.Getenv("PIVOT_STREAM_CLIENTS"))
	require.NoError(t, err)
	head, err := strconv.ParseUint(os.Getenv("PIVOT_STREAM_HEAD"), 10, 64)
	require.NoError(t, err)
	cfg := streamTestConfig()
	for i := range n {
		conn, sig, _, err := dialStream(addr, fmt.Sprintf("10.1.%d.%d:80", i/250, i%250), cfg)
		require.NoError(t, err)
		defer conn.Close()
		out := frameSigner{secret: []byte(cfg.Token), proof: sig, dir: toPivot}
		body, _ := encodeBody(streamFrame{Type: frameAck, Key: "users/*", Epoch: os.Getenv("PIVOT_STREAM_EPOCH"), Next: head})
		require.NoError(t, out.write(conn, body))
		go func() {
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// BenchmarkStream_PivotMemoryPerNode reports what one open stream costs the pivot:
// heap and goroutine stacks in use after a collection, and goroutines, per stream,
// with the streams' other end in a child process. Kernel socket buffers are not
// counted.
func BenchmarkStream_PivotMemoryPerNode(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for range b.N {
				server, result := startStreamPivot(b, streamTestConfig())
				sk := result.engine.keyByPath("users/*")
				head, _ := feedHead(sk)
				before, goroutines := memoryInUse(), runtime.NumGoroutine()

				child := exec.Command(os.Args[0], "-test.run=^TestStreamHelperClients$")
				child.Env = append(os.Environ(), "PIVOT_STREAM_HELPER="+server.Address, fmt.Sprintf("PIVOT_STREAM_CLIENTS=%d", n),
					"PIVOT_STREAM_EPOCH="+sk.rep.Epoch(), fmt.Sprintf("PIVOT_STREAM_HEAD=%d", head))
				stdin, err := child.StdinPipe()
				require.NoError(b, err)
				stdout, err := child.StdoutPipe()
				require.NoError(b, err)
				child.Stderr = os.Stderr
				require.NoError(b, child.Start())
				line, err := bufio.NewReader(stdout).ReadString('\n')
				require.NoError(b, err, "helper: %s", line)
				streamEventually(b, func() bool { return acked(result, n) }, "%d streams acknowledged", n)

				after, g := memoryInUse(), runtime.NumGoroutine()
				b.ReportMetric(float64(after-before)/float64(n), "B/node")
				b.ReportMetric(float64(g-goroutines)/float64(n), "goroutines/node")
				_ = stdin.Close()
				require.NoError(b, child.Wait())
			}
		})
	}
}

// memoryInUse is the heap and the goroutine stacks in use after a collection.
func memoryInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}
