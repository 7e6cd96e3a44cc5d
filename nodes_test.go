package pivot_test

import (
	"testing"
)

func TestNodes_NodeRegistersItselfAndReceivesTriggers(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", cfg)
	addr := freeAddr(t)
	nodeCfg := cfg
	nodeCfg.Advertise = addr
	nodeCfg.DisableStream = true // this test proves triggers: with its stream open, a node gets none
	node := startInstance(t, "node", memoryKind.make(t), addr, p.addr, nodeCfg)

	eventually(t, waitTimeout, func() bool {
		nodes := p.result.Status().Nodes
		return len(nodes) == 1 && nodes[0].Address == addr
	}, "the pivot learns the node from its own NodesKey entry")
	// The node runs no periodic sync and reads nothing: only the pivot's trigger can
	// bring this write to it.
	set(t, p, "users/from-pivot", `"hello"`)
	eventually(t, waitTimeout, func() bool {
		return state(t, node.db, []string{"users/*"}, true)["users/from-pivot"] != ""
	}, "the trigger makes the node pull")
	eventually(t, waitTimeout, func() bool {
		n := p.result.Status().Nodes[0]
		return n.Healthy && !n.LastContact.IsZero() && !n.LastTrigger.IsZero()
	}, "node health is reported")
}
