package pivot

import (
	"bytes"

	"github.com/benitogf/pivot/ooo/storage"
)

// Wins is pivot's last-write-wins order, the one rule every replica uses to settle a
// conflict. It reports whether incoming must replace current:
//
//  1. the higher version (the later of created and updated) wins;
//  2. on an equal version, a delete beats a write;
//  3. between two writes of equal version, the larger data bytes win;
//  4. identical entries do not replace each other, so applying twice changes nothing.
//
// current is the zero Entry for a key never seen, which any real entry beats. The order
// is total and depends only on the two entries, so every replica picks the same winner
// whatever order changes arrive in. Storages call it under their own lock through
// storage.Replica.Apply; it must stay free of side effects.
func Wins(incoming, current storage.Entry) bool {
	iv, cv := incoming.Version(), current.Version()
	if iv != cv {
		return iv > cv
	}
	if incoming.Deleted != current.Deleted {
		return incoming.Deleted
	}
	if incoming.Deleted {
		return false
	}
	return bytes.Compare(incoming.Data, current.Data) > 0
}

var _ storage.Wins = Wins

// snapshotEntry is what a replica holds of one key, as far as the order needs to
// recognise it: its version and whether it is a tombstone.
type snapshotEntry struct {
	version int64
	deleted bool
}

// adoptWins is the one exception to Wins, for a node re-pointed at another cluster
// (adopt mode): its entries of the old cluster (old) are replaced by the new pivot's
// even when they sort later under Wins, but only while the local entry is still the one
// recorded in old, so a local write racing the reconciliation is kept, and an identical
// entry still does not replace itself. Every other key follows Wins.
func adoptWins(old map[string]snapshotEntry) storage.Wins {
	return func(in, current storage.Entry) bool {
		if o, ok := old[in.Key]; ok && current.Version() == o.version && current.Deleted == o.deleted {
			return in.Version() != current.Version() || in.Deleted != current.Deleted || !bytes.Equal(in.Data, current.Data)
		}
		return Wins(in, current)
	}
}
