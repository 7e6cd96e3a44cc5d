package pivot

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/benitogf/pivot/ooo/storage"
)

// maxSnapshotPages bounds the pages one reconciliation reads (with the default batch,
// 5 million entries); a bigger collection finishes in the next round.
const maxSnapshotPages = 10000

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

// snapshotEntry is what the pivot holds for one key, as far as a reconciliation needs.
type snapshotEntry struct {
	version int64
	deleted bool
}

// reconcile brings sk in line with the pivot when the cursor cannot be used (see the
// modes above). Local writes not yet pushed are pushed first and are never removed. A
// digest comparison skips the snapshot when both sides already hold the same entries.
// Removals are tombstones applied as remote, so they are never pushed.
func (n *nodeSync) reconcile(ctx context.Context, sk *syncKey, cur *cursor, pivotEpoch string) error {
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
	batch := n.e.cfg.BatchSize
	remote, err := n.pivot.digest(ctx, sk.path)
	if err != nil {
		return err
	}
	local, err := digestOf(sk, batch)
	if err != nil {
		return err
	}
	if remote.Digest == local.String() && remote.Count == local.count {
		n.e.log.Debug("pivot: in sync with the pivot's snapshot", "key", sk.path, "entries", local.count)
		cur.PivotEpoch, cur.Pull, cur.Adopt = remote.Epoch, remote.Head, false
		return n.persist(sk, cur)
	}
	n.e.log.Info("pivot: reconciling with the pivot's snapshot", "key", sk.path, "mode", mode,
		"local", local.count, "pivot", remote.Count)

	// In adopt mode, the old cluster's entries (everything already pushed or received)
	// are replaced by the new pivot's even when they sort later under LWW. The wins
	// function only forces the replacement while the entry is still the one scanned,
	// so a local write racing the reconciliation is kept.
	wins := Wins
	old := map[string]snapshotEntry{}
	if mode == modeAdopt {
		_, err := scanFeed(sk, batch, func(c storage.Change) error {
			if c.Remote || c.Version() < cur.AdoptBefore {
				old[c.Key] = snapshotEntry{c.Version(), c.Deleted}
			}
			return nil
		})
		if err != nil {
			return err
		}
		wins = func(in, current storage.Entry) bool {
			if o, ok := old[in.Key]; ok && current.Version() == o.version && current.Deleted == o.deleted {
				return in.Version() != current.Version() || in.Deleted != current.Deleted || string(in.Data) != string(current.Data)
			}
			return Wins(in, current)
		}
	}

	seen := map[string]snapshotEntry{}
	var since uint64
	epoch := ""
	for i := 0; ; i++ {
		if i >= maxSnapshotPages {
			return fmt.Errorf("pivot: reconcile %s: snapshot larger than %d pages", sk.path, maxSnapshotPages)
		}
		resp, err := n.pivot.changes(ctx, sk.path, since, batch, n.budget(sk))
		if err != nil {
			return err
		}
		if epoch == "" {
			epoch = resp.Epoch
		} else if resp.Epoch != epoch {
			return fmt.Errorf("pivot: reconcile %s: the pivot's epoch changed during the snapshot", sk.path)
		}
		hold, err := n.applyRemoteWith(sk, resp.Changes, wins)
		if err != nil {
			return err
		}
		if hold != nil {
			return skewError("reconcile", sk.path)
		}
		for _, c := range resp.Changes {
			seen[c.Key] = snapshotEntry{c.Version(), c.Deleted}
		}
		since = resp.Next
		if !resp.More {
			break
		}
	}

	var drop, send []storage.Entry
	_, err = scanFeed(sk, batch, func(c storage.Change) error {
		p, held := seen[c.Key]
		unsent := !c.Remote && c.Seq > cur.Push
		switch mode {
		case modeMerge:
			// Unsent entries are the push's to send (see above).
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
	if err != nil {
		return err
	}
	for start := 0; start < len(drop); start += batch {
		part := drop[start:min(start+batch, len(drop))]
		applied, err := sk.rep.Apply(part, wins)
		if err != nil {
			return fmt.Errorf("pivot: reconcile %s: remove entries the pivot does not hold: %w", sk.path, err)
		}
		n.e.log.Info("pivot: removed entries the pivot does not hold", "key", sk.path, "removed", len(applied))
	}
	for _, part := range splitBatches(send, batch, n.budget(sk)) {
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
	cur.PivotEpoch, cur.Pull, cur.Adopt = epoch, since, false
	return n.persist(sk, cur)
}

// removal is the tombstone that removes c's key on this node only: applied as remote,
// it is never pushed, and it wins over c under LWW (same version, a delete).
func removal(c storage.Change) storage.Entry {
	return storage.Entry{Key: c.Key, Created: c.Created, Updated: c.Version(), Deleted: true}
}
