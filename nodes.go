package pivot

import (
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

// pivotRole is the pivot side of the engine (the hub): it knows the nodes (from
// NodesKey) and tells them to sync after every change of a synced key.
type pivotRole struct {
	e       *syncEngine
	sem     chan struct{} // FanOut slots for triggers to healthy nodes
	refresh chan struct{} // capacity 1: re-read NodesKey

	mu     sync.Mutex
	nodes  map[string]*remoteNode // by address
	timers map[*time.Timer]struct{}
	closed bool

	lastChange atomic.Int64 // unix ns of the last change of a synced key

	writers writerRegistry // which storage holds which writer id (writers.go)
	streams *streamHub     // the nodes' live streams (stream_hub.go)
	owners  ownership      // which nodes this process triggers (ownership.go)
}

// remoteNode is one node as the pivot sees it.
type remoteNode struct {
	addr string // "host:port": the node's name
	dial string // the address from its NodesKey entry, with its scheme if it had one
	peer *peer

	mu          sync.Mutex
	pending     map[string]struct{} // key paths to trigger
	forced      map[string]struct{} // pending paths to send without the skip check (ownership.go)
	running     bool                // a goroutine is sending triggers
	retryArmed  bool                // a timer will restart sending after backoff
	failures    int
	nextTry     time.Time
	lastError   string
	lastTrigger time.Time
	lastContact time.Time // last successful exchange, in either direction
	lastPull    time.Time // last pull to the head of the feed, or skip (it held everything)
	removed     bool
	elsewhere   bool                   // another pivot process triggers the node (ownership.go)
	skipped     int64                  // triggers not sent: the node held every change
	views       map[*syncKey]*nodeView // what the node holds, per key; nil until it pulls
}

// newPivotRole makes the pivot side of e, with no nodes known until run reads NodesKey.
func newPivotRole(e *syncEngine) *pivotRole {
	return &pivotRole{
		e:       e,
		sem:     make(chan struct{}, e.cfg.FanOut),
		refresh: make(chan struct{}, 1),
		nodes:   map[string]*remoteNode{},
		timers:  map[*time.Timer]struct{}{},
		streams: newStreamHub(e),
	}
}

// run waits for the storages, learns the nodes, tells them all to sync (the pivot may
// have been down), then re-reads NodesKey whenever it changes.
func (h *pivotRole) run() {
	ctx := h.e.ctx
	if !h.e.waitReady() {
		return
	}
	// Storages of Keys other than the server's may start later.
	for !h.active() {
		t := time.NewTimer(storagePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	h.reload()
	if h.e.cfg.Membership != nil {
		h.e.spawn(h.runMembership)
	}
	h.triggerAll(nil)
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.refresh:
			h.reload()
		}
	}
}

// active reports whether every synced storage is started.
func (h *pivotRole) active() bool {
	for _, sk := range h.e.keys {
		if !sk.db.Active() {
			return false
		}
	}
	return true
}

// changed is called for every event of a synced key. It never blocks.
func (h *pivotRole) changed(sk *syncKey, ev ooo.StorageEvent) {
	h.lastChange.Store(time.Now().UnixNano())
	if sk.path == h.e.cfg.NodesKey {
		select {
		case h.refresh <- struct{}{}:
		default:
		}
	}
	h.streams.changed(sk)
	if h.e.cfg.Membership != nil {
		h.triggerShared(sk, ev)
		return
	}
	h.triggerAll([]string{sk.path})
}

// triggerAll asks every known node this process owns to sync paths (every key when
// nil).
func (h *pivotRole) triggerAll(paths []string) {
	for _, rn := range h.nodeList() {
		h.trigger(rn, paths)
	}
}

// nodeList returns the known nodes, in no particular order.
func (h *pivotRole) nodeList() []*remoteNode {
	h.mu.Lock()
	defer h.mu.Unlock()
	nodes := make([]*remoteNode, 0, len(h.nodes))
	for _, rn := range h.nodes {
		nodes = append(nodes, rn)
	}
	return nodes
}

// reload re-reads NodesKey and updates the set of nodes. Entries without a usable
// address are ignored.
func (h *pivotRole) reload() {
	sk := h.e.keyByPath(h.e.cfg.NodesKey)
	if sk == nil {
		return
	}
	found := map[string]string{} // node name ("host:port") → address to dial
	_, err := scanFeed(sk, nodesPage, func(c storage.Change) error {
		if !c.Deleted {
			if dial, ok := nodeAddress(c.Data); ok {
				_, name, _ := splitAddress(dial)
				found[name] = dial
			}
		}
		return nil
	})
	if err != nil {
		h.e.fail("read nodes", err)
		return
	}
	h.mu.Lock()
	var added []*remoteNode
	var gone []*remoteNode
	for addr, rn := range h.nodes {
		if dial, ok := found[addr]; !ok || dial != rn.dial {
			gone = append(gone, rn)
			delete(h.nodes, addr)
		}
	}
	for addr, dial := range found {
		if _, ok := h.nodes[addr]; !ok {
			rn := &remoteNode{addr: addr, dial: dial, peer: h.e.peer(dial, nil), pending: map[string]struct{}{}, elsewhere: !h.owns(addr)}
			h.nodes[addr] = rn
			added = append(added, rn)
		}
	}
	h.mu.Unlock()
	// Lock order: a node's mu is never taken while holding h.mu.
	for _, rn := range gone {
		rn.mu.Lock()
		rn.removed = true
		rn.mu.Unlock()
	}
	for _, rn := range added {
		h.e.log.Info("pivot: node discovered", "addr", rn.dial)
		h.trigger(rn, nil)
	}
}

// trigger queues paths for rn and starts sending unless a send is running (then that
// send picks them up: coalesced, never dropped) or rn is backing off after a failure.
// A node another pivot process owns is left to it (ownership.go).
func (h *pivotRole) trigger(rn *remoteNode, paths []string) {
	if h.streams.connected(rn.addr) {
		return // it gets every change on its stream
	}
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.removed || rn.elsewhere {
		return
	}
	rn.queueLocked(paths)
	h.kickLocked(rn)
}

// queueLocked adds paths (every key when nil, kept as "") to rn's pending triggers.
// rn.mu is held.
func (rn *remoteNode) queueLocked(paths []string) {
	if paths == nil {
		rn.pending[""] = struct{}{}
	}
	for _, p := range paths {
		rn.pending[p] = struct{}{}
	}
}

// kickLocked starts a sender for rn if none runs and rn is not backing off. rn.mu is held.
func (h *pivotRole) kickLocked(rn *remoteNode) {
	if rn.running || rn.retryArmed || len(rn.pending) == 0 {
		return
	}
	if wait := time.Until(rn.nextTry); wait > 0 {
		rn.retryArmed = true
		h.after(wait, func() {
			rn.mu.Lock()
			rn.retryArmed = false
			h.kickLocked(rn)
			rn.mu.Unlock()
		})
		return
	}
	rn.running = h.e.spawn(func() { h.send(rn) })
}

// send delivers rn's pending triggers until none are left or a delivery fails. A key
// the node already holds every change of (its own pushes, see nodeView) is left out of
// the trigger; when no key is left, no trigger is sent.
func (h *pivotRole) send(rn *remoteNode) {
	ctx := h.e.ctx
	for {
		rn.mu.Lock()
		if len(rn.pending) == 0 || rn.removed || ctx.Err() != nil || time.Now().Before(rn.nextTry) {
			rn.running = false
			h.kickLocked(rn)
			rn.mu.Unlock()
			return
		}
		var paths []string
		if _, all := rn.pending[""]; !all {
			for p := range rn.pending {
				paths = append(paths, p)
			}
			sort.Strings(paths)
		}
		rn.pending = map[string]struct{}{}
		forced := rn.forced
		rn.forced = nil
		rn.mu.Unlock()

		if paths != nil {
			paths = h.needed(rn, paths, forced)
			if len(paths) == 0 {
				continue
			}
		}
		rn.mu.Lock()
		healthy := rn.failures == 0
		rn.lastTrigger = time.Now()
		rn.mu.Unlock()

		// Healthy nodes share FanOut slots. A node that answers slower than
		// slotHold gives its slot back while its request goes on, and a failing
		// node never takes one: neither can delay the others for long.
		release := func() {}
		if healthy {
			select {
			case h.sem <- struct{}{}:
			case <-ctx.Done():
				continue
			}
			release = sync.OnceFunc(func() { <-h.sem })
		}
		hold := time.AfterFunc(slotHold, release)
		err := rn.peer.trigger(ctx, paths)
		hold.Stop()
		release()

		rn.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				h.e.ops.triggersFailed.Add(1)
				rn.failures++
				rn.lastError = err.Error()
				wait := h.e.backoff(rn.failures, rand.Int64N)
				if rn.failures >= dormantAfter {
					wait = dormantRetry
				}
				rn.nextTry = time.Now().Add(wait)
				rn.queueLocked(paths)
				for p := range forced {
					rn.forceLocked(p)
				}
				switch rn.failures {
				case 1:
					h.e.log.Warn("pivot: node unreachable", "addr", rn.dial, "err", err)
				case dormantAfter:
					h.e.log.Warn("pivot: node still unreachable, dialling it rarely now", "addr", rn.dial, "every", dormantRetry)
				}
			}
		} else {
			h.e.ops.triggersSent.Add(1)
			if rn.failures > 0 {
				h.e.log.Info("pivot: node reachable again", "addr", rn.dial, "outage", outageSince(rn.lastContact))
			}
			rn.failures, rn.lastError = 0, ""
			rn.nextTry = time.Time{}
			rn.lastContact = time.Now()
		}
		rn.mu.Unlock()
	}
}

// needed returns the paths rn does not already hold every change of, counting the
// others as skipped triggers. A forced path is kept without looking.
func (h *pivotRole) needed(rn *remoteNode, paths []string, forced map[string]struct{}) []string {
	kept := paths[:0]
	skipped := 0
	for _, p := range paths {
		_, force := forced[p]
		if sk := h.e.keyByPath(p); sk != nil && !force && h.holdsAll(rn, sk) {
			skipped++
			continue
		}
		kept = append(kept, p)
	}
	if skipped > 0 {
		rn.mu.Lock()
		rn.skipped += int64(skipped)
		rn.mu.Unlock()
		h.e.ops.triggersSkipped.Add(int64(skipped))
	}
	return kept
}

// after runs fn after d unless the hub is closed first.
func (h *pivotRole) after(d time.Duration, fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		h.mu.Lock()
		delete(h.timers, t)
		closed := h.closed
		h.mu.Unlock()
		if !closed {
			fn()
		}
	})
	h.timers[t] = struct{}{}
}

// stopTimers cancels every pending retry timer.
func (h *pivotRole) stopTimers() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for t := range h.timers {
		t.Stop()
	}
	h.timers = map[*time.Timer]struct{}{}
}

// contact records a request from rn (nil: a requester the pivot could not identify). A
// node that reaches the pivot is alive: its backoff is lifted.
func (h *pivotRole) contact(rn *remoteNode, pulledToHead bool) {
	if rn == nil {
		return
	}
	rn.mu.Lock()
	defer rn.mu.Unlock()
	now := time.Now()
	rn.lastContact = now
	if pulledToHead {
		rn.lastPull = now
	}
	if rn.failures > 0 {
		rn.failures, rn.lastError = 0, ""
		rn.nextTry = time.Time{}
		// A retry timer may be armed for long after (a dormant node): its firing
		// later only kicks an idle sender.
		rn.retryArmed = false
		h.kickLocked(rn)
	}
}

// nodeAddress reads a node's address from a NodesKey entry: {"ip": "host:port"}, or
// {"ip": "host", "port": 8080} with the port as a number or a string; "ip" may carry
// an http:// or https:// scheme. It returns the address as "host:port", or with the
// scheme when one was given.
func nodeAddress(data []byte) (string, bool) {
	var v struct {
		IP   string          `json:"ip"`
		Port json.RawMessage `json:"port"`
	}
	if json.Unmarshal(data, &v) != nil || v.IP == "" {
		return "", false
	}
	ip := strings.TrimSpace(v.IP)
	scheme := ""
	if sch, rest, ok := strings.Cut(ip, "://"); ok {
		scheme, ip = sch, strings.TrimSuffix(rest, "/")
	}
	if len(v.Port) > 0 && string(v.Port) != "null" {
		var port string
		var num json.Number
		if json.Unmarshal(v.Port, &port) != nil {
			if json.Unmarshal(v.Port, &num) != nil {
				return "", false
			}
			port = num.String()
		}
		if !validPort(strings.TrimSpace(port)) {
			return "", false
		}
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		ip = net.JoinHostPort(strings.Trim(ip, "[]"), strings.TrimSpace(port))
	}
	if scheme != "" {
		ip = scheme + "://" + ip
	}
	scheme, addr, err := splitAddress(ip)
	if err != nil {
		return "", false
	}
	if scheme != "" {
		addr = scheme + "://" + addr
	}
	return addr, true
}

// ProtectNodesKey keeps anonymous clients from adding, changing or removing nodes: it
// chains server.Audit so that every REST write or delete of a key that overlaps
// nodesKey (a node entry, the list itself, or a glob such as "*" that covers it) is
// refused with 401 unless allow(r) reports true (nil allows none). Reads stay as Audit
// had them. Nodes still register themselves with Config.Advertise, through the
// authenticated protocol, and the program can write entries through its storage.
// Call it before server.Start, on the pivot and on every node (NodesKey is synced).
func ProtectNodesKey(server *ooo.Server, nodesKey string, allow func(*http.Request) bool) {
	prev := server.Audit
	server.Audit = func(r *http.Request) bool {
		if prev != nil && !prev(r) {
			return false
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return true
		}
		k := strings.TrimPrefix(r.URL.Path, "/")
		if !key.IsValid(k) || !key.Peer(nodesKey, k) {
			return true
		}
		return allow != nil && allow(r)
	}
}

// BearerAllows returns, for ProtectNodesKey, a check that a request carries
// "Authorization: Bearer <credential>" (compared in constant time). An empty
// credential allows no request.
func BearerAllows(credential string) func(*http.Request) bool {
	want := []byte("Bearer " + credential)
	return func(r *http.Request) bool {
		return credential != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) == 1
	}
}

// nodeView is what the pivot knows one node holds of one synced key, so that it can
// skip the trigger of a node that has nothing new. A node's pushes land in the
// pivot's feed, and without the view the pivot would trigger the node to pull its own
// entries back.
//
// The view is a lower bound, never a guess. The node's last pull that reached the head
// of the feed, in epoch, ended at pulled. The node also holds every entry it pushed
// since (own), so it holds the feed up to held: pulled, moved on over changes that are
// all its own entries, exactly as pushed (the same hashEntry: key, stamps, tombstone flag and data). A
// trigger is skipped only when held reaches the head of the feed. Anything else in the
// feed, a changed epoch, a collected tombstone after held, or a node the pivot has no
// view of, means the trigger is sent.
//
// Pushed entries are recorded before they are applied, so the decision does not depend
// on whether the push's storage events reach the hub before or after its handler
// returns; an entry recorded but not applied (lost under LWW, refused for clock skew)
// never matches the feed, so it only causes a trigger.
type nodeView struct {
	epoch    string
	pulled   uint64
	held     uint64
	own      map[string]entryHash // by key: hashEntry of what the node pushed
	overflow bool                 // more than maxOwn pushed entries since the last pull
	// heldHashes are the hashes (hashEntry) of the feed's changes after heldFrom up
	// to held: the pivot offers them with a held range, and the node moves its cursor
	// only if it pushed every one of them itself (ownPushes). The view is kept per
	// name, which any holder of the secret can claim: the node's own check is what
	// keeps a spoofed push from being skipped.
	heldHashes []heldChange
	// heldFrom is where heldHashes start: pulled, or later once the node said its
	// cursor passed some of them (heldRange drops those, so a push answer stays small).
	heldFrom uint64
}

// heldChange is one change of a held range: its sequence and hash.
type heldChange struct {
	seq  uint64
	hash entryHash
}

// recordPull notes that rn's pull of sk reached the head of the feed at next, in epoch.
// What rn pushed before is in the feed up to next, so it is forgotten.
func (h *pivotRole) recordPull(rn *remoteNode, sk *syncKey, epoch string, next uint64) {
	if rn == nil {
		return
	}
	rn.mu.Lock()
	defer rn.mu.Unlock()
	v := rn.views[sk]
	if v == nil || v.epoch != epoch {
		if rn.views == nil {
			rn.views = map[*syncKey]*nodeView{}
		}
		v = &nodeView{epoch: epoch}
		rn.views[sk] = v
	}
	v.pulled, v.held = next, max(v.held, next)
	v.own, v.overflow, v.heldHashes, v.heldFrom = nil, false, nil, next
}

// recordPush notes, before they are applied, the entries rn pushes for sk. It records
// nothing while the pivot has not seen rn pull to the head of the feed.
func (h *pivotRole) recordPush(rn *remoteNode, sk *syncKey, entries []storage.Entry) {
	if rn == nil || len(entries) == 0 {
		return
	}
	rn.mu.Lock()
	defer rn.mu.Unlock()
	v := rn.views[sk]
	if v == nil || v.overflow {
		return
	}
	if len(v.own)+len(entries) > maxOwn || len(v.heldHashes)+len(entries) > maxOwn {
		v.own, v.overflow, v.heldHashes = nil, true, nil
		return
	}
	if v.own == nil {
		v.own = make(map[string]entryHash, len(entries))
	}
	for _, e := range entries {
		v.own[e.Key] = hashEntry(e)
	}
}

// heldRange, called after rn's push of sk was applied, reports whether rn holds the
// pivot's feed up to its head, and then the range it may move its pull cursor over
// (every change in it is its own, as far as the name it sends tells) with the hashes
// of the changes in it, for the node to check. pulled is where the node says its pull
// cursor stands: the changes before it are dropped from the view and the answer, so
// consecutive pushes do not repeat them (a false claim only shrinks the range the
// node that owns the name may skip: it then pulls).
func (h *pivotRole) heldRange(rn *remoteNode, sk *syncKey, pulled uint64) (from, to uint64, hashes []string, ok bool) {
	if rn == nil || !h.holdsAll(rn, sk) {
		return 0, 0, nil, false
	}
	rn.mu.Lock()
	defer rn.mu.Unlock()
	v := rn.views[sk]
	if v == nil || v.held <= v.pulled || v.overflow {
		return 0, 0, nil, false
	}
	if pulled > v.heldFrom && pulled <= v.held {
		keep := v.heldHashes[:0]
		for _, c := range v.heldHashes {
			if c.seq > pulled {
				keep = append(keep, c)
			}
		}
		v.heldHashes, v.heldFrom = keep, pulled
	}
	hashes = make([]string, len(v.heldHashes))
	for i, c := range v.heldHashes {
		hashes[i] = hex.EncodeToString(c.hash[:])
	}
	return max(v.pulled, v.heldFrom), v.held, hashes, true
}

// upToDate reports whether rn holds every change of every synced key (holdsAll).
func (h *pivotRole) upToDate(rn *remoteNode) bool {
	for _, sk := range h.e.keys {
		if !sk.db.Active() || !h.holdsAll(rn, sk) {
			return false
		}
	}
	return true
}

// holdsAll reports whether rn already holds every change of sk in the pivot's feed:
// there is none after its last pull, or all of them came from its own pushes. As it
// checks, the view moves up the feed. Each read takes at most len(own)+1 changes, and
// the storage is read without holding rn.mu. A node the pivot has no view of is
// reported as not holding everything, without reading the feed.
func (h *pivotRole) holdsAll(rn *remoteNode, sk *syncKey) bool {
	for range holdsAllReads {
		held, atHead := h.holdsNext(rn, sk)
		if !held {
			return false
		}
		if atHead {
			rn.mu.Lock()
			rn.lastPull = time.Now()
			rn.mu.Unlock()
			return true
		}
	}
	return false
}

// holdsNext reads the changes of sk after rn's view, as many as rn has own entries plus
// one, and reports whether rn holds all of them (then the view moves past them) and
// whether they reached the head of the feed.
func (h *pivotRole) holdsNext(rn *remoteNode, sk *syncKey) (held, atHead bool) {
	rn.mu.Lock()
	v := rn.views[sk]
	if v == nil || v.overflow {
		rn.mu.Unlock()
		return false, false
	}
	epoch, from, limit := v.epoch, v.held, len(v.own)+1
	rn.mu.Unlock()

	if sk.rep.Epoch() != epoch || sk.rep.Horizon() > from {
		return false, false
	}
	changes, next, err := sk.rep.Changes(sk.path, from, limit)
	if err != nil || sk.rep.Epoch() != epoch {
		return false, false
	}

	hashes := make([]entryHash, len(changes)) // each change hashed once, outside the lock
	for i, c := range changes {
		hashes[i] = hashEntry(c.Entry)
	}

	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.views[sk] != v || v.epoch != epoch {
		return false, false
	}
	// A pull by rn served meanwhile, or another check, may have moved held (and a pull
	// forgets own): what it covered is held.
	for i, c := range changes {
		if c.Seq <= v.held {
			continue
		}
		if o, ok := v.own[c.Key]; !ok || o != hashes[i] {
			return false, false
		}
	}
	for i, c := range changes {
		if c.Seq > v.held {
			v.heldHashes = append(v.heldHashes, heldChange{c.Seq, hashes[i]})
		}
		if o, ok := v.own[c.Key]; ok && o == hashes[i] {
			delete(v.own, c.Key)
		}
	}
	// Changes stopped at next: when cut at limit, next is the last change read, else
	// the head of the feed. Either way rn holds the feed up to it.
	v.held = max(v.held, next)
	return true, len(changes) < limit
}

// A node names itself on every request in HeaderNode, and the pivot matches that name
// to the addresses under NodesKey. The pivot uses the match for the node's status
// (last contact, lag) and to skip triggers the node does not need (see nodeView). A
// request the pivot cannot match is served as usual: the node is then triggered after
// every change, as if the pivot knew nothing about what it holds.

// identify returns the known node that sent r, or nil when r carries no HeaderNode or
// names no node under NodesKey. A name matches a NodesKey address when both are the
// same host:port, after two substitutions:
//   - an unspecified host ("0.0.0.0:8080" or "[::]:8080", the Address of a server
//     started on ":8080") is replaced by the IP the request came from;
//   - loopback names ("localhost", 127.0.0.0/8, "::1") are one host, when exactly one
//     known node has a loopback address on that port.
//
// Anything else (host names against IPs, proxies) does not match: set Config.Advertise
// on the node to its NodesKey address to be sure.
func (h *pivotRole) identify(r *http.Request) *remoteNode {
	name := r.Header.Get(HeaderNode)
	if name == "" {
		return nil
	}
	_, addr, err := splitAddress(name)
	if err != nil {
		return nil
	}
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		remote, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return nil
		}
		host, addr = remote, net.JoinHostPort(remote, port)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if rn := h.nodes[addr]; rn != nil {
		return rn
	}
	if !isLoopback(host) {
		return nil
	}
	var found *remoteNode
	for a, rn := range h.nodes {
		if hh, pp, err := net.SplitHostPort(a); err == nil && pp == port && isLoopback(hh) {
			if found != nil {
				return nil // two loopback nodes on one port: ambiguous
			}
			found = rn
		}
	}
	return found
}

// isLoopback reports whether host names this machine's loopback interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
