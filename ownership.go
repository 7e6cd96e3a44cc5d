package pivot

import (
	"math/rand/v2"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

// Several pivot processes over one shared data set (Config.Membership): every process
// sees every change through its storage's events, and each triggers only the nodes it
// owns by rendezvous hashing of the node's name over the live members (Owner). Every
// process still knows every node (it reads NodesKey from the shared data) and serves
// every node's requests: a node may sync with any of them (Config.Pivots).

// ownership is a pivot's share of the nodes among the live pivot processes. Without a
// Membership it owns every node.
type ownership struct {
	self    atomic.Pointer[string]   // the name this process joined under; nil before
	members atomic.Pointer[[]string] // the live members as last read
	moved   atomic.Int64             // nodes that moved to this process after a change
}

// owns reports whether this process triggers the node named name: always without a
// Membership, and while this process is not among the live members (before its Join,
// or after its lease lapsed), since a trigger too many costs a round and one too few
// delays a node.
func (h *pivotRole) owns(name string) bool {
	if h.e.cfg.Membership == nil {
		return true
	}
	self, members := h.owners.self.Load(), h.owners.members.Load()
	if self == nil || members == nil || !slices.Contains(*members, *self) {
		return true
	}
	return Owner(*members, name) == *self
}

// memberName is the name this pivot process joins the membership under: the
// host:port of Config.Advertise, else the address its server listens on.
func (h *pivotRole) memberName() string {
	if a := h.e.cfg.Advertise; a != "" {
		if _, hp, err := splitAddress(a); err == nil {
			return hp
		}
		return a
	}
	if h.e.server != nil {
		return h.e.server.Address
	}
	return ""
}

// runMembership joins the membership (retrying with backoff), then re-reads the
// members after every change and triggers the nodes that moved to this process. It
// returns when the engine stops.
func (h *pivotRole) runMembership() {
	m, ctx := h.e.cfg.Membership, h.e.ctx
	self := h.memberName()
	if host, _, err := net.SplitHostPort(self); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			// Two machines listening on ":8800" would join under one name.
			h.e.log.Warn("pivot: joining the pivot processes under an unspecified address; set Advertise to the address the nodes list in Pivots", "self", self)
		}
	}
	for attempt := 1; ; attempt++ {
		err := m.Join(ctx, self)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		h.e.fail("pivot: could not join the pivot processes, retrying with backoff", err)
		t := time.NewTimer(h.e.backoff(attempt, rand.Int64N))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	h.owners.self.Store(&self)
	h.e.log.Info("pivot: joined the pivot processes", "self", self)
	h.rebalance()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.Changes():
			h.rebalance()
		}
	}
}

// rebalance reads the live members and decides again which nodes this process owns;
// it triggers every node that moved to it (on every key: its previous owner may have
// left before triggering it for the last changes).
func (h *pivotRole) rebalance() {
	members := h.e.cfg.Membership.Members()
	h.owners.members.Store(&members)
	moved := 0
	for _, rn := range h.nodeList() {
		if h.setOwned(rn) {
			moved++
			h.trigger(rn, nil)
		}
	}
	if moved > 0 {
		h.owners.moved.Add(int64(moved))
	}
	h.e.log.Debug("pivot: pivot processes changed", "members", members, "movedHere", moved)
}

// triggerShared triggers the owned nodes for an event of sk when the data set is
// shared by several pivot processes. Such a storage is remote: a feed read costs
// several round trips to its servers per node checked, about what the trigger costs,
// and the node's pull reads the feed anyway. So the check that skips a node's trigger
// (holdsAll) runs only for an event of an entry the node itself pushed, as it pushed it
// (the same hashEntry), which needs no read; the trigger for any other change is sent
// without reading the feed.
func (h *pivotRole) triggerShared(sk *syncKey, ev ooo.StorageEvent) {
	var hash *entryHash
	if ev.Operation == storage.OpSet && ev.Object != nil && !key.IsGlob(ev.Key) {
		x := hashEntry(storage.Entry{Key: ev.Key, Created: ev.Object.Created, Updated: ev.Object.Updated, Data: ev.Object.Data})
		hash = &x
	}
	paths := []string{sk.path}
	for _, rn := range h.nodeList() {
		rn.mu.Lock()
		if rn.removed || rn.elsewhere {
			rn.mu.Unlock()
			continue
		}
		rn.queueLocked(paths)
		if v := rn.views[sk]; hash == nil || v == nil || v.overflow || v.own[ev.Key] != *hash {
			rn.forceLocked(sk.path)
		}
		h.kickLocked(rn)
		rn.mu.Unlock()
	}
}

// forceLocked marks path, pending for rn, to be sent without the skip check. rn.mu is
// held.
func (rn *remoteNode) forceLocked(path string) {
	if rn.forced == nil {
		rn.forced = map[string]struct{}{}
	}
	rn.forced[path] = struct{}{}
}

// setOwned records whether this process owns rn now, and reports whether rn just
// moved to it.
func (h *pivotRole) setOwned(rn *remoteNode) bool {
	owned := h.owns(rn.addr)
	rn.mu.Lock()
	defer rn.mu.Unlock()
	moved := owned && rn.elsewhere
	rn.elsewhere = !owned
	return moved
}
