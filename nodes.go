package pivot

import (
	"crypto/subtle"
	"encoding/json"
	"hash/maphash"
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

// slotHold is the longest a trigger holds one of the FanOut slots. A node answers a
// trigger at once (the sync runs after the answer), so a slower answer means a slow or
// unreachable node, which must not hold up the others.
const slotHold = 100 * time.Millisecond

// A registration the pivot cannot reach (a node gone for good, a wrong or hostile
// address) is dialled with backoff dormantAfter times in a row, then only every
// dormantRetry: it costs the pivot next to nothing. A request from the node (it syncs
// on its own too) makes it live again at once.
const (
	dormantAfter = 10
	dormantRetry = 5 * time.Minute
)

// hub is the pivot side of the engine: it knows the nodes (from NodesKey) and tells them
// to sync after every change of a synced key.
type hub struct {
	e       *engine
	sem     chan struct{} // FanOut slots for triggers to healthy nodes
	refresh chan struct{} // capacity 1: re-read NodesKey
	seed    maphash.Seed  // hashes the data of pushed entries (nodeView)

	mu     sync.Mutex
	nodes  map[string]*remoteNode // by address
	timers map[*time.Timer]struct{}
	closed bool

	lastChange atomic.Int64 // unix ns of the last change of a synced key

	writers writerRegistry // which storage holds which writer id (writers.go)
}

// remoteNode is one node as the pivot sees it.
type remoteNode struct {
	addr string // "host:port": the node's name
	dial string // the address from its NodesKey entry, with its scheme if it had one
	peer *peer

	mu          sync.Mutex
	pending     map[string]struct{} // key paths to trigger
	running     bool                // a goroutine is sending triggers
	retryArmed  bool                // a timer will restart sending after backoff
	failures    int
	nextTry     time.Time
	lastError   string
	lastTrigger time.Time
	lastContact time.Time // last successful exchange, in either direction
	lastPull    time.Time // last pull to the head of the feed, or skip (it held everything)
	removed     bool
	skipped     int64                  // triggers not sent: the node held every change
	views       map[*syncKey]*nodeView // what the node holds, per key; nil until it pulls
}

// newHub makes the pivot side of e, with no nodes known until run reads NodesKey.
func newHub(e *engine) *hub {
	return &hub{
		e:       e,
		sem:     make(chan struct{}, e.cfg.FanOut),
		refresh: make(chan struct{}, 1),
		seed:    maphash.MakeSeed(),
		nodes:   map[string]*remoteNode{},
		timers:  map[*time.Timer]struct{}{},
	}
}

// run waits for the storages, learns the nodes, tells them all to sync (the pivot may
// have been down), then re-reads NodesKey whenever it changes.
func (h *hub) run() {
	ctx := h.e.ctx
	for !h.active() {
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	h.reload()
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
func (h *hub) active() bool {
	for _, sk := range h.e.keys {
		if !sk.db.Active() {
			return false
		}
	}
	return true
}

// changed is called for every event of a synced key. It never blocks.
func (h *hub) changed(sk *syncKey) {
	h.lastChange.Store(time.Now().UnixNano())
	if sk.path == h.e.cfg.NodesKey {
		select {
		case h.refresh <- struct{}{}:
		default:
		}
	}
	h.triggerAll([]string{sk.path})
}

// triggerAll asks every known node to sync paths (every key when nil).
func (h *hub) triggerAll(paths []string) {
	for _, n := range h.nodeList() {
		h.trigger(n, paths)
	}
}

// nodeList returns the known nodes, in no particular order.
func (h *hub) nodeList() []*remoteNode {
	h.mu.Lock()
	defer h.mu.Unlock()
	nodes := make([]*remoteNode, 0, len(h.nodes))
	for _, n := range h.nodes {
		nodes = append(nodes, n)
	}
	return nodes
}

// reload re-reads NodesKey and updates the set of nodes. Entries without a usable
// address are ignored.
func (h *hub) reload() {
	sk := h.e.keyByPath(h.e.cfg.NodesKey)
	if sk == nil {
		return
	}
	found := map[string]string{} // node name ("host:port") → address to dial
	_, err := scanFeed(sk, 1000, func(c storage.Change) error {
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
	for addr, n := range h.nodes {
		if dial, ok := found[addr]; !ok || dial != n.dial {
			gone = append(gone, n)
			delete(h.nodes, addr)
		}
	}
	for addr, dial := range found {
		if _, ok := h.nodes[addr]; !ok {
			n := &remoteNode{addr: addr, dial: dial, peer: h.e.peer(dial, nil), pending: map[string]struct{}{}}
			h.nodes[addr] = n
			added = append(added, n)
		}
	}
	h.mu.Unlock()
	// Lock order: a node's mu is never taken while holding h.mu.
	for _, n := range gone {
		n.mu.Lock()
		n.removed = true
		n.mu.Unlock()
	}
	for _, n := range added {
		h.e.log.Info("pivot: node discovered", "addr", n.dial)
		h.trigger(n, nil)
	}
}

// trigger queues paths for n and starts sending unless a send is running (then that
// send picks them up: coalesced, never dropped) or n is backing off after a failure.
func (h *hub) trigger(n *remoteNode, paths []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.removed {
		return
	}
	n.queueLocked(paths)
	h.kickLocked(n)
}

// queueLocked adds paths (every key when nil, kept as "") to n's pending triggers.
// n.mu is held.
func (n *remoteNode) queueLocked(paths []string) {
	if paths == nil {
		n.pending[""] = struct{}{}
	}
	for _, p := range paths {
		n.pending[p] = struct{}{}
	}
}

// kickLocked starts a sender for n if none runs and n is not backing off. n.mu is held.
func (h *hub) kickLocked(n *remoteNode) {
	if n.running || n.retryArmed || len(n.pending) == 0 {
		return
	}
	if wait := time.Until(n.nextTry); wait > 0 {
		n.retryArmed = true
		h.after(wait, func() {
			n.mu.Lock()
			n.retryArmed = false
			h.kickLocked(n)
			n.mu.Unlock()
		})
		return
	}
	n.running = h.e.spawn(func() { h.send(n) })
}

// send delivers n's pending triggers until none are left or a delivery fails. A key
// the node already holds every change of (its own pushes, see nodeView) is left out of
// the trigger; when no key is left, no trigger is sent.
func (h *hub) send(n *remoteNode) {
	ctx := h.e.ctx
	for {
		n.mu.Lock()
		if len(n.pending) == 0 || n.removed || ctx.Err() != nil || time.Now().Before(n.nextTry) {
			n.running = false
			h.kickLocked(n)
			n.mu.Unlock()
			return
		}
		var paths []string
		if _, all := n.pending[""]; !all {
			for p := range n.pending {
				paths = append(paths, p)
			}
			sort.Strings(paths)
		}
		n.pending = map[string]struct{}{}
		n.mu.Unlock()

		if paths != nil {
			paths = h.needed(n, paths)
			if len(paths) == 0 {
				continue
			}
		}
		n.mu.Lock()
		healthy := n.failures == 0
		n.lastTrigger = time.Now()
		n.mu.Unlock()

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
		err := n.peer.trigger(ctx, paths)
		hold.Stop()
		release()

		n.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				n.failures++
				n.lastError = err.Error()
				wait := h.e.backoff(n.failures, rand.Int64N)
				if n.failures >= dormantAfter {
					wait = dormantRetry
				}
				n.nextTry = time.Now().Add(wait)
				n.queueLocked(paths)
				switch n.failures {
				case 1:
					h.e.log.Warn("pivot: node unreachable", "addr", n.dial, "err", err)
				case dormantAfter:
					h.e.log.Warn("pivot: node still unreachable, dialling it rarely now", "addr", n.dial, "every", dormantRetry)
				}
			}
		} else {
			if n.failures > 0 {
				h.e.log.Info("pivot: node reachable again", "addr", n.dial)
			}
			n.failures = 0
			n.nextTry = time.Time{}
			n.lastContact = time.Now()
		}
		n.mu.Unlock()
	}
}

// needed returns the paths n does not already hold every change of, counting the
// others as skipped triggers.
func (h *hub) needed(n *remoteNode, paths []string) []string {
	kept := paths[:0]
	skipped := 0
	for _, p := range paths {
		if sk := h.e.keyByPath(p); sk != nil && h.holdsAll(n, sk) {
			skipped++
			continue
		}
		kept = append(kept, p)
	}
	if skipped > 0 {
		n.mu.Lock()
		n.skipped += int64(skipped)
		n.mu.Unlock()
	}
	return kept
}

// after runs fn after d unless the hub is closed first.
func (h *hub) after(d time.Duration, fn func()) {
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
func (h *hub) stopTimers() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for t := range h.timers {
		t.Stop()
	}
	h.timers = map[*time.Timer]struct{}{}
}

// contact records a request from n (nil: a requester the pivot could not identify). A
// node that reaches the pivot is alive: its backoff is lifted.
func (h *hub) contact(n *remoteNode, pulledToHead bool) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	n.lastContact = now
	if pulledToHead {
		n.lastPull = now
	}
	if n.failures > 0 {
		n.failures = 0
		n.nextTry = time.Time{}
		// A retry timer may be armed for long after (a dormant node): its firing
		// later only kicks an idle sender.
		n.retryArmed = false
		h.kickLocked(n)
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
