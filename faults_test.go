package pivot_test

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/stretchr/testify/require"
)

// faultLink is the fault seam of one instance: its Config.Client sends through a
// testcluster.Network in which the link from it to every peer can be cut.
type faultLink struct{ net *testcluster.Network }

// faultFrom names the instance of a fault client in its network.
const faultFrom = "under-test"

func newFaultClient() (*http.Client, faultLink) {
	net := testcluster.NewNetwork(1)
	return net.Transport(faultFrom).Client(), faultLink{net: net}
}

// set makes every request of the instance pass (LinkUp), fail at once (LinkRefused) or
// hang until its deadline (LinkBlackhole).
func (l faultLink) set(mode testcluster.LinkMode) {
	l.net.SetMode(faultFrom, testcluster.AnyPeer, mode)
}

func TestFaults_PartitionedNodeStaysAvailableThenConverges(t *testing.T) {
	for _, mode := range []testcluster.LinkMode{testcluster.LinkRefused, testcluster.LinkBlackhole} {
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

			link.set(mode)
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

			link.set(testcluster.LinkUp)
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
