package pivot_test

import (
	"path/filepath"
	"testing"

	"github.com/benitogf/pivot/ooo"
)

// boltKind keeps data in a bbolt file in the test's temporary folder; a restart opens a
// new BoltStorage on the same file.
var boltKind = storageKind{
	name: "bolt",
	make: func(t testing.TB) ooo.Database {
		return &ooo.BoltStorage{Path: filepath.Join(t.TempDir(), "data.db")}
	},
	reopen: func(_ testing.TB, old ooo.Database) ooo.Database {
		return &ooo.BoltStorage{Path: old.(*ooo.BoltStorage).Path}
	},
}

// storageKinds are the storages the end-to-end tests run on.
var storageKinds = []storageKind{memoryKind, boltKind}
