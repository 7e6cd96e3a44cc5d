package pivot

import (
	"encoding/hex"
	"hash/maphash"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
)

// maxOwn bounds the pushed entries the pivot remembers per node and key between two of
// the node's pulls. Past it the pivot forgets them and triggers the node after every
// change until its next pull to the head of the feed.
const maxOwn = maxLimit

// holdsAllReads bounds the feed reads of one holdsAll. A node that keeps pushing while
// the pivot checks its view may need a second read; a check that does not reach the
// head of the feed gives up, and the node is triggered.
const holdsAllReads = 4

// nodeView is what the pivot knows one node holds of one synced key (design 5.3: the
// pivot skips the trigger of a node that has nothing new). A node's pushes land in the
// pivot's feed, and without the view the pivot would trigger the node to pull its own
// entries back.
//
// The view is a lower bound, never a guess. The node's last pull that reached the head
// of the feed, in epoch, ended at pulled. The node also holds every entry it pushed
// since (own), so it holds the feed up to held: pulled, moved on over changes that are
// all its own entries, exactly as pushed (same version, tombstone flag and data). A
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
	own      map[string]ownEntry // by key
	overflow bool                // more than maxOwn pushed entries since the last pull
	// heldHashes are the hashes (hashEntry) of the feed's changes after pulled up to
	// held: the pivot offers them with a held range, and the node moves its cursor
	// only if it pushed every one of them itself (ownPushes). The view is kept per
	// name, which any holder of the secret can claim: the node's own check is what
	// keeps a spoofed push from being skipped.
	heldHashes []entryHash
}

// ownEntry is one entry a node pushed, as far as matching it against the feed needs.
type ownEntry struct {
	version int64
	deleted bool
	data    uint64 // maphash of the data, with the hub's seed
}

// ownEntry summarises e for matching against the feed, hashing its data with the
// hub's seed.
func (h *hub) ownEntry(e storage.Entry) ownEntry {
	return ownEntry{version: e.Version(), deleted: e.Deleted, data: maphash.Bytes(h.seed, e.Data)}
}

// recordPull notes that n's pull of sk reached the head of the feed at next, in epoch.
// What n pushed before is in the feed up to next, so it is forgotten.
func (h *hub) recordPull(n *remoteNode, sk *syncKey, epoch string, next uint64) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	v := n.views[sk]
	if v == nil || v.epoch != epoch {
		if n.views == nil {
			n.views = map[*syncKey]*nodeView{}
		}
		v = &nodeView{epoch: epoch}
		n.views[sk] = v
	}
	v.pulled, v.held = next, max(v.held, next)
	v.own, v.overflow, v.heldHashes = nil, false, nil
}

// recordPush notes, before they are applied, the entries n pushes for sk. It records
// nothing while the pivot has not seen n pull to the head of the feed.
func (h *hub) recordPush(n *remoteNode, sk *syncKey, entries []storage.Entry) {
	if n == nil || len(entries) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	v := n.views[sk]
	if v == nil || v.overflow {
		return
	}
	if len(v.own)+len(entries) > maxOwn || len(v.heldHashes)+len(entries) > maxOwn {
		v.own, v.overflow, v.heldHashes = nil, true, nil
		return
	}
	if v.own == nil {
		v.own = make(map[string]ownEntry, len(entries))
	}
	for _, e := range entries {
		v.own[e.Key] = h.ownEntry(e)
	}
}

// heldRange, called after n's push of sk was applied, reports whether n holds the
// pivot's feed up to its head, and then the range it may move its pull cursor over
// (from the end of its last pull to the head, every change is its own, as far as the
// name it sends tells) with the hashes of the changes in it, for the node to check.
func (h *hub) heldRange(n *remoteNode, sk *syncKey) (from, to uint64, hashes []string, ok bool) {
	if n == nil || !h.holdsAll(n, sk) {
		return 0, 0, nil, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	v := n.views[sk]
	if v == nil || v.held <= v.pulled || v.overflow {
		return 0, 0, nil, false
	}
	hashes = make([]string, len(v.heldHashes))
	for i, hh := range v.heldHashes {
		hashes[i] = hex.EncodeToString(hh[:])
	}
	return v.pulled, v.held, hashes, true
}

// upToDate reports whether n holds every change of every synced key (holdsAll).
func (h *hub) upToDate(n *remoteNode) bool {
	for _, sk := range h.e.keys {
		if !sk.db.Active() || !h.holdsAll(n, sk) {
			return false
		}
	}
	return true
}

// holdsAll reports whether n already holds every change of sk in the pivot's feed:
// there is none after its last pull, or all of them came from its own pushes. As it
// checks, the view moves up the feed. Each read takes at most len(own)+1 changes, and
// the storage is read without holding n.mu. A node the pivot has no view of is
// reported as not holding everything, without reading the feed.
func (h *hub) holdsAll(n *remoteNode, sk *syncKey) bool {
	for range holdsAllReads {
		held, atHead := h.holdsNext(n, sk)
		if !held {
			return false
		}
		if atHead {
			n.mu.Lock()
			n.lastPull = time.Now()
			n.mu.Unlock()
			return true
		}
	}
	return false
}

// holdsNext reads the changes of sk after n's view, as many as n has own entries plus
// one, and reports whether n holds all of them (then the view moves past them) and
// whether they reached the head of the feed.
func (h *hub) holdsNext(n *remoteNode, sk *syncKey) (held, atHead bool) {
	n.mu.Lock()
	v := n.views[sk]
	if v == nil || v.overflow {
		n.mu.Unlock()
		return false, false
	}
	epoch, from, limit := v.epoch, v.held, len(v.own)+1
	n.mu.Unlock()

	if sk.rep.Epoch() != epoch || sk.rep.Horizon() > from {
		return false, false
	}
	changes, next, err := sk.rep.Changes(sk.path, from, limit)
	if err != nil || sk.rep.Epoch() != epoch {
		return false, false
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if n.views[sk] != v || v.epoch != epoch {
		return false, false
	}
	// A pull by n served meanwhile, or another check, may have moved held (and a pull
	// forgets own): what it covered is held.
	for _, c := range changes {
		if c.Seq <= v.held {
			continue
		}
		if o, ok := v.own[c.Key]; !ok || o != h.ownEntry(c.Entry) {
			return false, false
		}
	}
	for _, c := range changes {
		if c.Seq > v.held {
			v.heldHashes = append(v.heldHashes, hashEntry(c.Entry))
		}
		if o, ok := v.own[c.Key]; ok && o == h.ownEntry(c.Entry) {
			delete(v.own, c.Key)
		}
	}
	// Changes stopped at next: when cut at limit, next is the last change read, else
	// the head of the feed. Either way n holds the feed up to it.
	v.held = max(v.held, next)
	return true, len(changes) < limit
}

// ownPushes is, on a node, what it pushed of one key since its last pull reached the
// pivot's head: the hashes (hashEntry) of the entries, at most maxOwn of them. A push
// answer's held range is trusted only when every change in it is one of these, so
// nothing another peer put in the pivot's feed, whatever name it claimed, is skipped.
// Owned by the node's run goroutine.
type ownPushes struct {
	hashes   map[entryHash]struct{}
	overflow bool
}

// add records pushed entries.
func (o *ownPushes) add(entries []storage.Entry) {
	if o.overflow {
		return
	}
	if len(o.hashes)+len(entries) > maxOwn {
		o.hashes, o.overflow = nil, true
		return
	}
	if o.hashes == nil {
		o.hashes = make(map[entryHash]struct{}, len(entries))
	}
	for _, e := range entries {
		o.hashes[hashEntry(e)] = struct{}{}
	}
}

// holds reports whether every hash of a held range (hex, as the pivot sent them) is
// of an entry recorded here.
func (o *ownPushes) holds(held []string) bool {
	if o.overflow || len(held) == 0 {
		return false
	}
	for _, s := range held {
		var hh entryHash
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != len(hh) {
			return false
		}
		copy(hh[:], b)
		if _, ok := o.hashes[hh]; !ok {
			return false
		}
	}
	return true
}

// reset forgets what was pushed: a pull reached the pivot's head, so it is all behind
// the cursor.
func (o *ownPushes) reset() { o.hashes, o.overflow = nil, false }
