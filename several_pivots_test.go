package pivot_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/stretchr/testify/require"
)

// hub is several pivot processes serving one cluster over one shared data set, with
// their membership.
type hub struct {
	t      testing.TB
	data   *sharedData
	group  *pivot.MemoryGroup
	pivots []*instance
	// triggers, per pivot process, refuses its triggers to nodes while set.
	triggers []*triggerGate
}

// triggerGate is a transport that refuses the pivot protocol's trigger requests while
// closed, and passes everything else.
type triggerGate struct {
	closed atomic.Bool
	inner  http.RoundTripper
}

func (g *triggerGate) RoundTrip(req *http.Request) (*http.Response, error) {
	if g.closed.Load() && strings.HasSuffix(req.URL.Path, "/trigger") {
		return nil, errors.New("gate: triggers refused")
	}
	return g.inner.RoundTrip(req)
}

// startHub starts n pivot processes over one shared data set, each with a member of
// one MemoryGroup, and waits until every one of them sees them all.
func startHub(t testing.TB, n int, cfg pivot.Config) *hub {
	t.Helper()
	h := &hub{t: t, data: newSharedData(), group: &pivot.MemoryGroup{}}
	for i := range n {
		c := cfg
		c.Membership = h.group.Member()
		gate := &triggerGate{inner: http.DefaultTransport.(*http.Transport).Clone()}
		c.Client = &http.Client{Transport: gate}
		server := &ooo.Server{Silence: true, Storage: h.data.view()}
		h.pivots = append(h.pivots, startServer(t, fmt.Sprintf("pivot%d", i+1), server, "", c))
		h.triggers = append(h.triggers, gate)
	}
	eventually(t, waitTimeout, func() bool {
		for _, p := range h.pivots {
			if len(p.result.Status().Members) != n {
				return false
			}
		}
		return true
	}, "every pivot process sees the %d members", n)
	return h
}

// addrs lists the pivot processes' addresses, as nodes are given them.
func (h *hub) addrs() []string {
	out := make([]string, len(h.pivots))
	for i, p := range h.pivots {
		out[i] = p.addr
	}
	return out
}

// startNode starts a node with every pivot address (Config.Pivots) and registers it
// in the shared data.
func (h *hub) startNode(name string, cfg pivot.Config) *instance {
	h.t.Helper()
	c := cfg
	c.Pivots = h.addrs()
	node := startInstance(h.t, name, &ooo.MemoryStorage{}, "", "", c)
	h.pivots[0].register(node)
	return node
}

// byAddr returns the pivot process listening at addr.
func (h *hub) byAddr(addr string) *instance {
	for _, p := range h.pivots {
		if p.addr == addr {
			return p
		}
	}
	h.t.Fatalf("no pivot process at %s", addr)
	return nil
}

// nodeOn returns what pivot process p reports of the node at addr.
func nodeOn(t testing.TB, p *instance, addr string) pivot.NodeStatus {
	t.Helper()
	for _, ns := range p.result.Status().Nodes {
		if ns.Address == addr {
			return ns
		}
	}
	return pivot.NodeStatus{}
}

// Two pivot processes over one data set and three nodes: each node syncs with the
// process that owns it, exactly one process triggers each node; when one process
// stops, its nodes fail over to the other with their cursors (no reconciliation),
// the survivor takes their triggers over, and every write made before, during and
// after reaches every node.
func TestSeveralPivots_StopOneProcessNodesFailOverAndConverge(t *testing.T) {
	cfg := testConfig()
	h := startHub(t, 2, cfg)
	var nodes []*instance
	for i := range 3 {
		nodes = append(nodes, h.startNode(fmt.Sprintf("node%d", i+1), cfg))
	}
	members := h.group.Names()
	perOwner := map[string][]*instance{}
	for _, n := range nodes {
		owner := pivot.Owner(members, n.addr)
		perOwner[owner] = append(perOwner[owner], n)
		eventually(t, waitTimeout, func() bool { return n.result.Status().Pivot == owner }, "%s syncs with the process that owns it, %s", n.name, owner)
		eventually(t, waitTimeout, func() bool {
			owned := 0
			for _, p := range h.pivots {
				if ns := nodeOn(t, p, n.addr); ns.Address != "" && ns.Owned {
					owned++
					if p.addr != owner {
						return false
					}
				}
			}
			return owned == 1
		}, "exactly one pivot process, %s, triggers %s", owner, n.name)
	}

	var written []string
	write := func(in *instance, k string) {
		set(t, in, k, fmt.Sprintf(`{"by":%q}`, in.name))
		written = append(written, k)
	}
	for _, n := range nodes {
		write(n, "users/"+n.name+"-before")
	}
	write(h.pivots[0], "users/hub-before")
	all := append(slices.Clone(nodes), h.pivots...)
	waitConverged(t, all, false)
	reconciled := map[string]float64{}
	for _, n := range nodes {
		reconciled[n.name] = reconciliations(n)
	}

	// Stop the process that owns the most nodes (at least two of the three).
	victim := h.pivots[0]
	if len(perOwner[h.pivots[1].addr]) > len(perOwner[victim.addr]) {
		victim = h.pivots[1]
	}
	survivor := h.pivots[0]
	if survivor == victim {
		survivor = h.pivots[1]
	}
	moved := perOwner[victim.addr]
	victim.stop()
	for _, n := range nodes {
		write(n, "users/"+n.name+"-during")
	}
	write(survivor, "users/hub-during")
	eventually(t, waitTimeout, func() bool {
		return slices.Equal(survivor.result.Status().Members, []string{survivor.addr})
	}, "the survivor sees the other process leave")
	for _, n := range nodes {
		write(n, "users/"+n.name+"-after")
	}
	rest := append(slices.Clone(nodes), survivor)
	waitConverged(t, rest, false)

	for _, in := range rest {
		s := state(t, in.db, []string{"users/*"}, true)
		for _, k := range written {
			require.Contains(t, s, k, "%s holds %s", in.name, k)
		}
	}
	for _, n := range moved {
		st := n.result.Status()
		require.Equal(t, survivor.addr, st.Pivot, "%s moved to the survivor", n.name)
		require.GreaterOrEqual(t, st.Failovers, int64(1), "%s failed over", n.name)
		require.Equal(t, reconciled[n.name], reconciliations(n), "%s failed over without reconciling", n.name)
		require.True(t, nodeOn(t, survivor, n.addr).Owned, "the survivor triggers %s", n.name)
	}
	require.GreaterOrEqual(t, survivor.result.Status().MovedNodes, int64(len(moved)), "the nodes that moved were counted")
}

// reconciliations counts the full reconciliations a node ran, in every mode.
func reconciliations(in *instance) float64 {
	m := in.result.Metrics()
	total := 0.0
	for _, v := range m.Reconciliations {
		total += float64(v)
	}
	return total
}

// A change of membership makes the process a node moved to trigger it at once: a
// write the node's owner could not tell it about (its triggers fail) reaches the
// node as soon as the owner vanishes from the membership, with no periodic sync and
// no read to pull it.
func TestSeveralPivots_AMembershipChangeTriggersTheNodesThatMoved(t *testing.T) {
	cfg := testConfig()
	cfg.ReadBudget = -1
	cfg.RepairInterval = -1
	h := startHub(t, 2, cfg)
	var nodes []*instance
	for i := range 3 {
		nodes = append(nodes, h.startNode(fmt.Sprintf("node%d", i+1), cfg))
	}
	waitConverged(t, append(slices.Clone(nodes), h.pivots...), false)

	x := nodes[0]
	owner := h.byAddr(pivot.Owner(h.group.Names(), x.addr))
	other := h.pivots[0]
	if other == owner {
		other = h.pivots[1]
	}
	eventually(t, waitTimeout, func() bool {
		return nodeOn(t, owner, x.addr).Owned && !nodeOn(t, other, x.addr).Owned
	}, "the owner alone triggers %s", x.name)
	for i, p := range h.pivots {
		if p == owner {
			h.triggers[i].closed.Store(true)
		}
	}
	// x may still be in a round begun before (its first rounds end after the data
	// converged) and pull a write before its owner's trigger: then the owner rightly
	// skips the trigger. Write again until a write finds x idle: the owner's trigger
	// fails and x does not hold the write.
	before := nodeOn(t, other, x.addr).LastTrigger
	key := ""
	for i := 0; key == ""; i++ {
		require.Less(t, i, 20, "a write that %s's owner could not tell it about", x.name)
		k := fmt.Sprintf("users/while-the-owner-cannot-tell-%d", i)
		set(t, other, k, `{"n":1}`)
		eventually(t, waitTimeout, func() bool {
			return nodeOn(t, owner, x.addr).ConsecutiveFailures > 0 || state(t, x.db, []string{"users/*"}, true)[k] != ""
		}, "the owner's trigger to %s fails, or %s pulled the write in a round of its own", x.name, x.name)
		if state(t, x.db, []string{"users/*"}, true)[k] == "" {
			key = k
		}
	}
	require.Equal(t, before, nodeOn(t, other, x.addr).LastTrigger, "the other process leaves %s to its owner", x.name)

	moved := other.result.Status().MovedNodes
	h.group.Vanish(owner.addr)
	eventually(t, waitTimeout, func() bool {
		return state(t, x.db, []string{"users/*"}, true)[key] != ""
	}, "%s receives the write once it moved to the other process", x.name)
	require.True(t, nodeOn(t, other, x.addr).LastTrigger.After(before), "the other process triggered %s", x.name)
	require.True(t, nodeOn(t, other, x.addr).Owned)
	require.Greater(t, other.result.Status().MovedNodes, moved)
}

// Nodes keep their pivot address while it answers: a node that failed over stays on
// the process it moved to when the first one comes back.
func TestSeveralPivots_ANodeStaysOnTheAddressThatAnswers(t *testing.T) {
	cfg := testConfig()
	h := startHub(t, 2, cfg)
	node := h.startNode("node", cfg)
	first := h.byAddr(node.result.Status().Pivot)
	second := h.pivots[0]
	if second == first {
		second = h.pivots[1]
	}
	set(t, node, "users/a", `1`)
	waitConverged(t, []*instance{node, second}, false)
	first.stop()
	set(t, node, "users/b", `2`)
	eventually(t, waitTimeout, func() bool { return get(t, second, "users/b") == "2" }, "the write reaches the second process")
	require.Equal(t, second.addr, node.result.Status().Pivot)

	// The first process comes back on its address, over the same data.
	c := first.config
	c.Membership = h.group.Member()
	back := startServer(t, "back", &ooo.Server{Silence: true, Storage: h.data.view()}, first.addr, c)
	eventually(t, waitTimeout, func() bool { return len(back.result.Status().Members) == 2 }, "the first process joins again")
	set(t, node, "users/c", `3`)
	eventually(t, waitTimeout, func() bool { return get(t, back, "users/c") == "3" }, "the write reaches the shared data")
	require.Equal(t, second.addr, node.result.Status().Pivot, "the node stays where it is")
	waitConverged(t, []*instance{node, second, back}, false)
}

// With several pivot addresses or a membership, ClusterID is required: without it a
// node names the cluster by its pivot's address, and a failover would look like a move
// to another cluster.
func TestConfig_SeveralPivotsNeedAClusterID(t *testing.T) {
	base := testConfig()
	base.ClusterID = ""
	for name, c := range map[string]pivot.Config{
		"Pivots":     func() pivot.Config { c := base; c.Pivots = []string{"127.0.0.1:1", "127.0.0.1:2"}; return c }(),
		"Membership": func() pivot.Config { c := base; c.Membership = (&pivot.MemoryGroup{}).Member(); return c }(),
	} {
		err := c.Validate()
		require.ErrorIs(t, err, pivot.ErrInvalidConfig, name)
		require.ErrorContains(t, err, "ClusterID: required with "+name)
	}
	dup := testConfig()
	dup.Pivots = []string{"127.0.0.1:1", "http://127.0.0.1:1"}
	require.ErrorContains(t, dup.Validate(), "Pivots[1]")
	bad := testConfig()
	bad.Pivots = []string{"nowhere"}
	require.ErrorContains(t, bad.Validate(), "Pivots[0]")

	onNode := testConfig()
	onNode.Membership = (&pivot.MemoryGroup{}).Member()
	require.PanicsWithError(t, "pivot: invalid config: Membership: set on a node (server.Pivot or Pivots is set); it is for pivot processes", func() {
		pivot.Setup(&ooo.Server{Pivot: "127.0.0.1:1"}, onNode)
	})
}

// A node whose addresses include one where nothing listens syncs through the other,
// whichever order rendezvous hashing put them in.
func TestSeveralPivots_AnAddressWhereNothingListensIsSkipped(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	c := cfg
	c.Pivots = []string{freeAddr(t), p.addr}
	node := startInstance(t, "node", &ooo.MemoryStorage{}, "", "", c)
	p.register(node)
	set(t, node, "users/a", `1`)
	waitConverged(t, []*instance{p, node}, false)
	st := node.result.Status()
	require.Equal(t, p.addr, st.Pivot)
	require.ElementsMatch(t, c.Pivots, st.Pivots)
}

// A node moves on from an address that answers but refuses it (a process set up with
// another Token) to one that serves it.
func TestSeveralPivots_AnAddressThatRefusesTheNodeIsLeft(t *testing.T) {
	cfg := testConfig()
	wrong := cfg
	wrong.Token = "another-token-for-another-cluster"
	refusing := startInstance(t, "refusing", &ooo.MemoryStorage{}, "", "", wrong)
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	c := cfg
	c.Pivots = []string{refusing.addr, p.addr}
	node := startInstance(t, "node", &ooo.MemoryStorage{}, "", "", c)
	p.register(node)
	set(t, node, "users/a", `1`)
	waitConverged(t, []*instance{p, node}, false)
	require.Equal(t, p.addr, node.result.Status().Pivot)
}
