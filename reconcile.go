package pivot

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
)

// digest summarises the entries of one key path, tombstones included: the XOR of a
// SHA-256 per entry over (key, version, data), so it does not depend on the order
// entries are read in (a tombstone has no data, a live entry always has some, so the
// two never hash alike). Tombstones count because a node missing one must not be found
// in sync: it would skip the tombstone for good. Replicas that collected tombstones at
// different times then differ, which only costs a full snapshot. count is the number
// of live entries.
type digest struct {
	sum   [sha256.Size]byte
	count int
	head  uint64
}

// add folds one entry into the digest.
func (d *digest) add(e storage.Entry) {
	h := sha256.New()
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(e.Version()))
	h.Write([]byte(e.Key))
	h.Write([]byte{0})
	h.Write(v[:])
	h.Write(e.Data)
	var one [sha256.Size]byte
	h.Sum(one[:0])
	for i := range d.sum {
		d.sum[i] ^= one[i]
	}
	if !e.Deleted {
		d.count++
	}
}

// String is the digest sum in hex, as sent in digestResponse.Digest.
func (d *digest) String() string { return hex.EncodeToString(d.sum[:]) }

// digestOf computes the digest of sk's entries by reading its whole change feed.
func digestOf(sk *syncKey, page int) (*digest, error) {
	d := &digest{}
	head, err := scanFeed(sk, page, func(c storage.Change) error {
		d.add(c.Entry)
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.head = head
	return d, nil
}

// Reconciliation modes, chosen from why the cursor cannot be used.
const (
	// modeMerge: first sync, or the pivot's data was reset (new epoch, same cluster).
	// Both sides keep what they have: the node applies the pivot's snapshot under LWW
	// and pushes every entry the pivot lacks or holds older, so a pivot that lost its
	// data is restored from its nodes.
	modeMerge = "merge"
	// modePrune: the cursor fell below the pivot's tombstone horizon (same epoch). The
	// node applies the snapshot and removes the entries the pivot does not hold: they
	// were deleted there and the tombstones collected.
	modePrune = "prune"
	// modeAdopt: the node was re-pointed at another cluster. The node's copy becomes the
	// new pivot's: the old cluster's entries are replaced or removed, never pushed.
	modeAdopt = "adopt"
)

// reconcile brings sk in line with the pivot when the cursor cannot be used (see the
// modes above), in steps: push what is unsent, compare digests (equal: done), read the
// pivot's snapshot into the local data, then remove or send back what the snapshot
// lacks, as the mode says. Local writes not yet pushed are never removed. Removals are
// tombstones applied as remote, so they are never pushed.
func (n *nodeRole) reconcile(ctx context.Context, sk *syncKey, cur *cursor, pivotEpoch string) error {
	mode := modeMerge
	switch {
	case cur.Adopt:
		mode = modeAdopt
	case cur.PivotEpoch == pivotEpoch:
		mode = modePrune
	}
	// An entry the pivot refuses (too large, stamped in the future) stays unsent: the
	// push cursor holds before it, the key's own push reports it, and it is protected
	// below. It must not keep the node from taking the pivot's data meanwhile.
	if err := n.push(ctx, sk, cur); err != nil && unreachable(err) {
		return err
	}
	same, err := n.sameAsPivot(ctx, sk, cur, mode)
	if err != nil || same {
		return err
	}
	n.e.ops.reconciled(mode)
	wins := Wins
	var old map[string]snapshotEntry
	if mode == modeAdopt {
		if old, err = oldClusterEntries(sk, n.e.cfg.BatchSize, cur.AdoptBefore); err != nil {
			return err
		}
		wins = adoptWins(old)
	}
	seen, epoch, next, err := n.applySnapshot(ctx, sk, wins)
	if err != nil {
		return err
	}
	drop, send, err := snapshotDifferences(sk, n.e.cfg.BatchSize, cur.Push, mode, seen, old)
	if err != nil {
		return err
	}
	if err := n.dropLocal(sk, drop, wins); err != nil {
		return err
	}
	if err := n.sendBack(ctx, sk, send); err != nil {
		return err
	}
	cur.PivotEpoch, cur.Pull, cur.Adopt = epoch, next, false
	n.e.ops.heads.Store(sk, next)
	return n.persist(sk, cur)
}

// sameAsPivot compares the digests of sk here and on the pivot. When they are equal it
// takes the pivot's head as the pull cursor and reports true: no snapshot is needed.
func (n *nodeRole) sameAsPivot(ctx context.Context, sk *syncKey, cur *cursor, mode string) (bool, error) {
	remote, err := n.pivot.digest(ctx, sk.path)
	if err != nil {
		return false, err
	}
	local, err := digestOf(sk, n.e.cfg.BatchSize)
	if err != nil {
		return false, err
	}
	if remote.Digest != local.String() || remote.Count != local.count {
		msg := "pivot: reconciling with the pivot's snapshot"
		if mode == modeMerge && cur.PivotEpoch == "" && cur.Pull == 0 {
			msg = "pivot: first sync, taking the pivot's snapshot" // expected, not an anomaly
		}
		n.e.log.Info(msg, "key", sk.path, "mode", mode, "local", local.count, "pivot", remote.Count)
		return false, nil
	}
	n.e.log.Debug("pivot: in sync with the pivot's snapshot", "key", sk.path, "entries", local.count)
	cur.PivotEpoch, cur.Pull, cur.Adopt = remote.Epoch, remote.Head, false
	n.e.ops.heads.Store(sk, remote.Head)
	return true, n.persist(sk, cur)
}

// oldClusterEntries lists, for adopt mode, the entries of the cluster a node was
// re-pointed from: everything received, and everything written before the node was
// set up for the new cluster.
func oldClusterEntries(sk *syncKey, page int, adoptBefore int64) (map[string]snapshotEntry, error) {
	old := map[string]snapshotEntry{}
	_, err := scanFeed(sk, page, func(c storage.Change) error {
		if c.Remote || c.Version() < adoptBefore {
			old[c.Key] = snapshotEntry{c.Version(), c.Deleted}
		}
		return nil
	})
	return old, err
}

// applySnapshot reads the pivot's whole snapshot of sk and applies it under wins. It
// returns what the pivot holds of each key, the pivot's epoch and the cursor where the
// snapshot ended.
func (n *nodeRole) applySnapshot(ctx context.Context, sk *syncKey, wins storage.Wins) (map[string]snapshotEntry, string, uint64, error) {
	seen := map[string]snapshotEntry{}
	var since uint64
	epoch := ""
	for i := 0; ; i++ {
		if i >= maxSnapshotPages {
			return nil, "", 0, fmt.Errorf("pivot: reconcile %s: snapshot larger than %d pages", sk.path, maxSnapshotPages)
		}
		resp, err := n.pivot.changes(ctx, sk.path, since, n.e.cfg.BatchSize, n.budget(sk))
		if err != nil {
			return nil, "", 0, err
		}
		if epoch == "" {
			epoch = resp.Epoch
		} else if resp.Epoch != epoch {
			return nil, "", 0, fmt.Errorf("pivot: reconcile %s: the pivot's epoch changed during the snapshot", sk.path)
		}
		hold, err := n.applyRemoteWith(sk, resp.Changes, wins)
		if err != nil {
			return nil, "", 0, err
		}
		if hold != nil {
			return nil, "", 0, skewError("reconcile", sk.path)
		}
		for _, c := range resp.Changes {
			seen[c.Key] = snapshotEntry{c.Version(), c.Deleted}
		}
		since = resp.Next
		if !resp.More {
			return seen, epoch, since, nil
		}
	}
}

// snapshotDifferences scans the local data of sk against the pivot's snapshot (seen)
// and returns, as mode says, the local entries to remove (prune: deleted on the pivot,
// their tombstones collected; adopt: the old cluster's) and those to send back (merge:
// the pivot lacks them or holds them older). Unsent entries (after pushed) are never
// removed, and are the push's to send.
func snapshotDifferences(sk *syncKey, page int, pushed uint64, mode string, seen, old map[string]snapshotEntry) (drop, send []storage.Entry, err error) {
	_, err = scanFeed(sk, page, func(c storage.Change) error {
		p, held := seen[c.Key]
		unsent := !c.Remote && c.Seq > pushed
		switch mode {
		case modeMerge:
			if !unsent && (!held || p.version != c.Version() || p.deleted != c.Deleted) {
				send = append(send, c.Entry)
			}
		case modePrune:
			if !held && !c.Deleted && !unsent {
				drop = append(drop, removal(c))
			}
		case modeAdopt:
			if _, isOld := old[c.Key]; !held && isOld && !c.Deleted {
				drop = append(drop, removal(c))
			}
		}
		return nil
	})
	return drop, send, err
}

// dropLocal applies the removals of a reconciliation, in batches.
func (n *nodeRole) dropLocal(sk *syncKey, drop []storage.Entry, wins storage.Wins) error {
	batch := n.e.cfg.BatchSize
	for start := 0; start < len(drop); start += batch {
		part := drop[start:min(start+batch, len(drop))]
		applied, err := sk.rep.Apply(part, wins)
		if err != nil {
			return fmt.Errorf("pivot: reconcile %s: remove entries the pivot does not hold: %w", sk.path, err)
		}
		n.e.log.Info("pivot: removed entries the pivot does not hold", "key", sk.path, "removed", len(applied))
	}
	return nil
}

// sendBack pushes to the pivot the entries it lacked (merge mode), in batches.
func (n *nodeRole) sendBack(ctx context.Context, sk *syncKey, send []storage.Entry) error {
	for _, part := range splitBatches(send, n.e.cfg.BatchSize, n.budget(sk)) {
		resp, err := n.pivot.apply(ctx, sk.path, applyRequest{Entries: part})
		if err != nil {
			return err
		}
		if len(resp.Refused) > 0 {
			return refusedError("reconcile", sk.path, resp.Refused)
		}
		n.e.counts.pushed.Add(int64(resp.Applied))
	}
	if len(send) > 0 {
		n.e.log.Info("pivot: restored entries the pivot did not hold", "key", sk.path, "sent", len(send))
	}
	return nil
}

// removal is the tombstone that removes c's key on this node only: applied as remote,
// it is never pushed, and it wins over c under LWW (same version, a delete).
func removal(c storage.Change) storage.Entry {
	return storage.Entry{Key: c.Key, Created: c.Created, Updated: c.Version(), Deleted: true}
}

// check compares sk's data with the pivot's digest tree and repairs every difference
// under LWW: the pivot's entry is applied here when it wins (a record this node cannot
// read counts as missing, so it is fetched again), this node's entry is pushed when it
// wins. It runs only when the cursors say both sides are at rest (the node pulled to the
// pivot's head and has nothing unsent): otherwise push and pull have work to do first
// and the check waits for the next time.
func (n *nodeRole) check(ctx context.Context, sk *syncKey, cur *cursor) error {
	if cur.PivotEpoch == "" || cur.Adopt {
		return nil
	}
	unsent, err := readFeed(sk, cur.Push, 1, n.e.budget(), func(c storage.Change) bool { return !c.Remote })
	if err != nil || len(unsent.changes) > 0 {
		return err
	}
	t := &sk.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.refresh(sk, n.e.cfg.BatchSize, n.e.budget(), true); err != nil {
		return err
	}
	root, err := n.pivot.tree(ctx, sk.path, "")
	if err != nil {
		return err
	}
	n.contact()
	if root.Epoch != cur.PivotEpoch || root.Head != cur.Pull {
		return nil // not at rest: the next pull does the work
	}
	n.e.counts.checks.Add(1)
	local := t.node(0, 0)
	if root.Digest == hex.EncodeToString(local.sum[:]) && root.Count == local.count {
		n.checked(sk, true)
		return nil
	}
	leaves, err := n.differingLeaves(ctx, sk, root)
	if err != nil {
		return err
	}
	var fetch, offer []string
	remote := map[string]leafEntry{}
	for _, leaf := range leaves {
		value, _, _ := parsePrefix(leaf.Prefix)
		mine := map[string]leafEntry{}
		for _, le := range t.leafEntries(value) {
			mine[le.Key] = le
		}
		for _, le := range leaf.Entries {
			remote[le.Key] = le
			if m, ok := mine[le.Key]; !ok || m.Hash != le.Hash {
				fetch = append(fetch, le.Key)
			}
		}
		for k, m := range mine {
			if r, ok := remote[k]; !ok || r.Hash != m.Hash {
				offer = append(offer, k)
			}
		}
	}
	fixedHere, err := n.fetchRepairs(ctx, sk, fetch)
	if err != nil {
		return err
	}
	fixedThere, err := n.offerRepairs(ctx, sk, offer)
	if err != nil {
		return err
	}
	n.checked(sk, false)
	n.e.log.Info("pivot: anti-entropy found a difference with the pivot", "key", sk.path,
		"leaves", len(leaves), "repairedHere", fixedHere, "repairedOnPivot", fixedThere)
	return nil
}

// differingLeaves walks down the pivot's tree from root wherever it differs from the
// local one, and returns the pivot's leaves that differ.
func (n *nodeRole) differingLeaves(ctx context.Context, sk *syncKey, root treeResponse) ([]treeResponse, error) {
	t := &sk.tree
	var leaves []treeResponse
	queue := []treeResponse{root}
	for requests := 0; len(queue) > 0 && requests < maxTreeRequests; {
		at := queue[0]
		queue = queue[1:]
		value, digits, err := parsePrefix(at.Prefix)
		if err != nil || len(at.Children) != 16 || digits >= treeDepth {
			return nil, &RemoteError{Op: "tree", Peer: n.pivot.base, Status: 200, Message: "malformed tree answer", kind: ErrBadRequest}
		}
		for i, child := range at.Children {
			mine := t.node(value<<4|i, digits+1)
			if child.Count == mine.count && child.Digest == hex.EncodeToString(mine.sum[:]) {
				continue
			}
			if requests >= maxTreeRequests {
				break
			}
			requests++
			resp, err := n.pivot.tree(ctx, sk.path, prefixString(value<<4|i, digits+1))
			if err != nil {
				return nil, err
			}
			if resp.Epoch != root.Epoch {
				return nil, fmt.Errorf("pivot: check %s: the pivot's epoch changed during the check", sk.path)
			}
			if digits+1 == treeDepth {
				leaves = append(leaves, resp)
			} else {
				queue = append(queue, resp)
			}
		}
	}
	return leaves, nil
}

// fetchRepairs gets the pivot's entries of keys and applies them under LWW; it returns
// how many replaced the local state.
func (n *nodeRole) fetchRepairs(ctx context.Context, sk *syncKey, keys []string) (int, error) {
	fixed := 0
	for rounds := 0; len(keys) > 0 && rounds < maxBatchesPerRound; rounds++ {
		part := keys[:min(len(keys), maxLimit)]
		resp, err := n.pivot.entries(ctx, sk.path, part, n.budget(sk))
		if err != nil {
			return fixed, err
		}
		if resp.Next < 1 || resp.Next > len(part) {
			return fixed, &RemoteError{Op: "entries", Peer: n.pivot.base, Status: 200, Message: "malformed entries answer", kind: ErrBadRequest}
		}
		keys = keys[resp.Next:]
		for _, en := range resp.Entries {
			if err := validEntry(sk.path, en); err != nil {
				return fixed, &RemoteError{Op: "entries", Peer: n.pivot.base, Status: 200, Message: err.Error(), kind: ErrBadRequest}
			}
		}
		if len(resp.Entries) == 0 {
			continue
		}
		results, err := sk.rep.ApplyEach(resp.Entries, Wins)
		if err != nil {
			return fixed, fmt.Errorf("pivot: repair %s: %w", sk.path, err)
		}
		for i, r := range results {
			switch {
			case r.Outcome == storage.Applied:
				a := resp.Entries[i]
				n.e.log.Info("pivot: repaired an entry from the pivot", "key", a.Key, "version", a.Version())
				fixed++
				n.e.counts.repaired.Add(1)
			case r.Outcome == storage.Refused && !skewed(r.Err):
				return fixed, fmt.Errorf("pivot: repair %s: %q: %w", sk.path, resp.Entries[i].Key, r.Err)
			}
		}
	}
	return fixed, nil
}

// offerRepairs pushes this node's entries of keys that differ from what the pivot
// listed for them (or that it lacks); it returns how many the pivot applied.
func (n *nodeRole) offerRepairs(ctx context.Context, sk *syncKey, keys []string) (int, error) {
	var send []storage.Entry
	for _, k := range keys {
		changes, _, err := sk.rep.Changes(k, 0, 1)
		if err != nil {
			return 0, fmt.Errorf("pivot: repair %s: read %s: %w", sk.path, k, err)
		}
		if len(changes) != 1 {
			continue
		}
		// Sent whatever the pivot listed: it applies the entry under Wins (lww.go), so
		// one it holds a winner for changes nothing there, and the rule stays in one
		// place.
		send = append(send, changes[0].Entry)
	}
	fixed := 0
	for _, part := range splitBatches(send, n.e.cfg.BatchSize, n.budget(sk)) {
		resp, err := n.pivot.apply(ctx, sk.path, applyRequest{Entries: part})
		if err != nil {
			return fixed, err
		}
		fixed += resp.Applied
		n.e.counts.repaired.Add(int64(resp.Applied))
		if resp.Applied > 0 {
			n.e.log.Info("pivot: repaired entries on the pivot", "key", sk.path, "entries", resp.Applied)
		}
	}
	return fixed, nil
}

// checked records a completed check of sk.
func (n *nodeRole) checked(sk *syncKey, inSync bool) {
	sk.lastCheck.Store(time.Now().UnixNano())
	sk.inSync.Store(inSync)
}
