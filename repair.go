package pivot

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
)

// maxTreeRequests bounds the tree requests of one check: with 16 children a level and
// treeDepth levels, a few hundred differing leaves are narrowed down in one check; a
// bigger difference is repaired over the next checks (or was a reconciliation's job).
const maxTreeRequests = 256

// check compares sk's data with the pivot's digest tree and repairs every difference
// under LWW: the pivot's entry is applied here when it wins (a record this node cannot
// read counts as missing, so it is fetched again), this node's entry is pushed when it
// wins. It runs only when the cursors say both sides are at rest (the node pulled to the
// pivot's head and has nothing unsent): otherwise push and pull have work to do first
// and the check waits for the next time.
func (n *nodeSync) check(ctx context.Context, sk *syncKey, cur *cursor) error {
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
func (n *nodeSync) differingLeaves(ctx context.Context, sk *syncKey, root treeResponse) ([]treeResponse, error) {
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
func (n *nodeSync) fetchRepairs(ctx context.Context, sk *syncKey, keys []string) (int, error) {
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
		applied, err := sk.rep.Apply(resp.Entries, Wins)
		if err != nil && len(skewedVersions(err)) == 0 {
			return fixed, fmt.Errorf("pivot: repair %s: %w", sk.path, err)
		}
		for _, a := range applied {
			n.e.log.Info("pivot: repaired an entry from the pivot", "key", a.Key, "version", a.Version())
		}
		fixed += len(applied)
		n.e.counts.repaired.Add(int64(len(applied)))
	}
	return fixed, nil
}

// offerRepairs pushes this node's entries of keys that differ from what the pivot
// listed for them (or that it lacks); it returns how many the pivot applied.
func (n *nodeSync) offerRepairs(ctx context.Context, sk *syncKey, keys []string) (int, error) {
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
func (n *nodeSync) checked(sk *syncKey, inSync bool) {
	sk.lastCheck.Store(time.Now().UnixNano())
	sk.inSync.Store(inSync)
}
