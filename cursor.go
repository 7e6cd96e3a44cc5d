package pivot

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// cursor is a node's persisted position in the sync of one key path. It lives beside the
// data (storage.Replica.SaveCursor), so a persistent storage keeps it across restarts.
type cursor struct {
	// Cluster is the identity of the cluster the cursor was taken in (see identity).
	Cluster string `json:"cluster"`
	// LocalEpoch is the local storage's epoch when Push was taken.
	LocalEpoch string `json:"localEpoch"`
	// PivotEpoch is the pivot's epoch when Pull was taken; "" before the first sync.
	PivotEpoch string `json:"pivotEpoch"`
	// Pull is the pivot's sequence up to which its changes were applied here.
	Pull uint64 `json:"pull"`
	// Push is the local sequence up to which local changes were acknowledged.
	Push uint64 `json:"push"`
	// Adopt is set when the node was re-pointed at another cluster and has not yet
	// replaced the old cluster's data with the new one's.
	Adopt bool `json:"adopt,omitempty"`
	// AdoptBefore, with Adopt, is when the node was set up for the new cluster (unix
	// ns). Entries with an older version belong to the old cluster: they are never
	// pushed. Stamps never run behind the wall clock, so every write made since is newer.
	AdoptBefore int64 `json:"adoptBefore,omitempty"`
}

// identity names the cluster a node syncs with: the ClusterID when it is set, else the
// pivot's address. A cursor taken under another identity belongs to another cluster.
func (n *nodeSync) identity() string {
	if n.e.cfg.ClusterID != "" {
		return "id:" + n.e.cfg.ClusterID
	}
	return "pivot:" + n.addr
}

// freshCursor is the cursor of sk before its first sync in this cluster: everything
// local is pushed, everything on the pivot is pulled.
func (n *nodeSync) freshCursor(sk *syncKey) *cursor {
	return &cursor{Cluster: n.identity(), LocalEpoch: sk.rep.Epoch()}
}

// cursorName is the SaveCursor name of a key path's cursor.
func cursorName(path string) string { return "pivot/" + path }

// cursor returns the cursor of sk, loading it on first use. A cursor taken in another
// cluster, or before the local data was reset, is replaced (see the package doc).
func (n *nodeSync) cursor(sk *syncKey) (*cursor, error) {
	if c, ok := n.cursors[sk]; ok && c.LocalEpoch == sk.rep.Epoch() {
		return c, nil
	}
	raw, err := sk.rep.LoadCursor(cursorName(sk.path))
	if err != nil {
		return nil, fmt.Errorf("pivot: load cursor of %s: %w", sk.path, err)
	}
	c := &cursor{}
	if raw != nil {
		if err := json.Unmarshal(raw, c); err != nil {
			n.e.log.Warn("pivot: unreadable cursor, syncing from scratch", "key", sk.path, "err", err)
			c = n.freshCursor(sk)
		}
	} else {
		c = n.freshCursor(sk)
	}
	switch {
	case c.LocalEpoch != sk.rep.Epoch():
		// The local data was reset: push what is there now, pull everything.
		n.e.log.Info("pivot: local data was reset, syncing from scratch", "key", sk.path)
		c = n.freshCursor(sk)
	case c.Cluster != n.identity():
		// Re-pointed at another cluster: the writes made for the old cluster stay
		// out of the new one, and the reconciliation that follows (PivotEpoch is "")
		// replaces them with the new cluster's data.
		n.e.log.Warn("pivot: re-pointed at another cluster, adopting its data", "key", sk.path,
			"from", c.Cluster, "to", n.identity())
		c = &cursor{Cluster: n.identity(), LocalEpoch: sk.rep.Epoch(), Adopt: true, AdoptBefore: n.e.created}
	}
	n.cursors[sk] = c
	if err := n.persist(sk, c); err != nil {
		return nil, err
	}
	return c, nil
}

// cursorFlushInterval is the longest a moved cursor stays unsaved. Saving is deferred
// because on a persistent storage each save is a disk sync; a cursor lost in a crash
// only makes the node send or fetch again what it already did, which LWW makes
// harmless.
const cursorFlushInterval = 250 * time.Millisecond

// save records that the cursor of sk moved; flush persists it later.
func (n *nodeSync) save(sk *syncKey, c *cursor) error {
	n.dirty[sk] = c
	return nil
}

// flush persists every cursor that moved since the last flush.
func (n *nodeSync) flush() error {
	var errs []error
	for sk, c := range n.dirty {
		if err := n.persist(sk, c); err != nil {
			errs = append(errs, err)
		}
	}
	n.lastFlush = time.Now()
	return errors.Join(errs...)
}

// persist saves the cursor of sk now. Changes of cluster, epoch or mode are saved at
// once; plain moves go through save and flush.
func (n *nodeSync) persist(sk *syncKey, c *cursor) error {
	delete(n.dirty, sk)
	raw, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("pivot: encode cursor of %s: %w", sk.path, err)
	}
	if err := sk.rep.SaveCursor(cursorName(sk.path), raw); err != nil {
		return fmt.Errorf("pivot: save cursor of %s: %w", sk.path, err)
	}
	return nil
}
