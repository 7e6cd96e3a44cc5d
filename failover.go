package pivot

import (
	"errors"
	"strings"
)

// A node given several pivot addresses (Config.Pivots) syncs with one at a time and
// moves to the next when a round cannot reach the one in use. The pivot processes
// behind the addresses share one data set, so the node's cursors (one epoch, one
// sequence) hold on every address and a failover needs no reconciliation.

// pivotAddresses lists the pivot addresses of a node: server.Pivot (when set) and
// the Pivots of its Config, each once (by host:port; Validate refuses duplicates
// within Pivots).
func pivotAddresses(pivot string, more []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range append([]string{pivot}, more...) {
		if a == "" {
			continue
		}
		_, hp, err := splitAddress(a)
		if err != nil {
			hp = a // a server.Pivot Validate did not see: dialled as given
		}
		if seen[hp] {
			continue
		}
		seen[hp] = true
		out = append(out, a)
	}
	return out
}

// hostPort is the host:port of a pivot address, the name the process behind it
// joins the membership under (when it joined under its address).
func hostPort(addr string) string {
	if _, hp, err := splitAddress(addr); err == nil {
		return hp
	}
	return strings.TrimSuffix(addr, "/")
}

// orderPivots puts the pivot addresses in the order of rendezvous hashing of this
// node's name (rendezvousOrder): first the process that owns the node, the one that
// triggers it, then the one that would own it if the first were gone, and so on.
// Called once, when the server is started (the node's name is known), before the
// run goroutine starts its rounds.
func (n *nodeRole) orderPivots() {
	if len(n.pivots) < 2 {
		return
	}
	name := n.e.nodeID()
	if _, hp, err := splitAddress(name); err == nil {
		name = hp
	}
	byName := map[string]*peer{}
	names := make([]string, len(n.pivots))
	addrs := *n.order.Load()
	for i, p := range n.pivots {
		names[i] = hostPort(addrs[i])
		byName[names[i]] = p
	}
	ordered := rendezvousOrder(names, name)
	pivots := make([]*peer, len(ordered))
	order := make([]string, len(ordered))
	for i, nm := range ordered {
		pivots[i] = byName[nm]
		for j, a := range addrs {
			if names[j] == nm {
				order[i] = a
			}
		}
	}
	n.pivots, n.at, n.pivot = pivots, 0, pivots[0]
	n.active.Store(n.pivot)
	n.using.Store(&order[0])
	n.order.Store(&order)
}

// cannotServe reports whether a round's error says the pivot address in use cannot
// serve this node at all, so another address may: it answered 5xx (its storage is
// unavailable), or refused the node's proof, cluster id or protocol version (a process
// set up apart from the others, or a token rotation that has not reached it yet).
// A refusal of some entries, or a local storage error, is not the address's fault.
func cannotServe(err error) bool {
	for _, kind := range []error{ErrUnavailable, ErrUnauthorized, ErrClusterMismatch, ErrVersionMismatch} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// failover moves the node to its next pivot address after a round that could not
// reach the one in use (err): the next round, after the usual backoff, goes there.
// With one address it does nothing.
func (n *nodeRole) failover(err error) {
	if len(n.pivots) < 2 {
		return
	}
	order := *n.order.Load()
	from := order[n.at]
	n.at = (n.at + 1) % len(n.pivots)
	n.pivot = n.pivots[n.at]
	n.active.Store(n.pivot)
	to := order[n.at]
	n.using.Store(&to)
	n.e.counts.failovers.Add(1)
	n.e.log.Info("pivot: moving to the next pivot address", "from", from, "to", to, "err", err)
}
