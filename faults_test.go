package pivot_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Link states of a faultTransport.
const (
	linkUp        = iota // requests pass
	linkCut              // requests fail at once, as when a peer refuses connections
	linkBlackhole        // requests hang until their deadline, as in a partition
)

// faultTransport is the transport seam the tests use to cut a link: it wraps a real
// transport and, depending on its state, passes, fails or swallows requests.
type faultTransport struct {
	state    atomic.Int32
	inner    http.RoundTripper
	requests atomic.Int64
}

func newFaultClient() (*http.Client, *faultTransport) {
	ft := &faultTransport{inner: http.DefaultTransport.(*http.Transport).Clone()}
	return &http.Client{Transport: ft}, ft
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.requests.Add(1)
	switch f.state.Load() {
	case linkCut:
		return nil, errors.New("fault: link cut")
	case linkBlackhole:
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	return f.inner.RoundTrip(req)
}

func TestFaults_PartitionedNodeStaysAvailableThenConverges(t *testing.T) {
	for _, mode := range []int32{linkCut, linkBlackhole} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			cfg := testConfig()
			cfg.ReadBudget = 20 * time.Millisecond
			c := startCluster(t, memoryKind, 1, cfg)
			client, link := newFaultClient()
			cfgA := cfg
			cfgA.Client = client
			cfgA.RequestTimeout = 200 * time.Millisecond
			a := startInstance(t, "partitioned", memoryKind.make(t), "", c.pivot.addr, cfgA)
			c.pivot.register(a)
			c.nodes = append(c.nodes, a)
			set(t, a, "users/a0", `0`)
			waitConverged(t, c.all(), false)

			link.state.Store(mode)
			for i := 1; i <= 20; i++ {
				set(t, a, fmt.Sprintf("users/a%d", i), fmt.Sprint(i))
				require.Equal(t, fmt.Sprint(i), get(t, a, fmt.Sprintf("users/a%d", i)), "reads on the cut-off node")
			}
			set(t, c.nodes[0], "users/other", `"from node1"`)
			set(t, c.pivot, "settings", `"from pivot"`)
			eventually(t, waitTimeout, func() bool { return !a.result.Status().PivotHealthy },
				"the node notices the partition")
			eventually(t, waitTimeout, func() bool { return get(t, c.pivot, "users/other") == `"from node1"` },
				"the rest of the cluster keeps syncing")

			link.state.Store(linkUp)
			waitConverged(t, c.all(), false)
		})
	}
}

// blackhole accepts connections and never answers: a node that died mid-partition.
func blackhole(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestFaults_DeadNodeDelaysNeitherWritesNorOtherNodes(t *testing.T) {
	cfg := testConfig()
	cfg.FanOut = 1
	c := startCluster(t, memoryKind, 1, cfg)
	for i := 0; i < 3; i++ {
		_, err := c.pivot.db.Set(fmt.Sprintf("things/dead%d", i), []byte(fmt.Sprintf(`{"ip":%q}`, blackhole(t))))
		require.NoError(t, err)
	}
	_, err := c.pivot.db.Set("things/no-address", []byte(`{"name":"never dialled"}`))
	require.NoError(t, err)
	for i := 0; i < 50; i++ {
		set(t, c.pivot, fmt.Sprintf("users/p%d", i), fmt.Sprint(i))
	}
	waitConverged(t, c.all(), false)
	eventually(t, waitTimeout, func() bool { return len(c.pivot.result.Status().Nodes) == 4 },
		"the three dead nodes and the live one are known; the entry without an address is not")
}
