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
