package pivot

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// viewFixture is a pivot's hub over one started MemoryStorage, and one node it knows.
type viewFixture struct {
	h  *pivotRole
	sk *syncKey
	db *ooo.MemoryStorage
	n  *remoteNode
}

func newViewFixture(t testing.TB) *viewFixture {
	t.Helper()
	db := &ooo.MemoryStorage{}
	if err := db.Start(ooo.StorageOpt{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	sk := &syncKey{path: "users/*", db: db, rep: db}
	e := newEngine(Config{}.withDefaults(), "", []*syncKey{sk}, http.DefaultClient)
	t.Cleanup(e.close)
	return &viewFixture{h: e.pivotRole, sk: sk, db: db, n: &remoteNode{pending: map[string]struct{}{}}}
}

// pulled records that the node pulled to the head of the feed, as the changes handler
// does.
func (f *viewFixture) pulled(t testing.TB) {
	t.Helper()
	_, head, err := f.db.Changes(f.sk.path, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	f.h.recordPull(f.n, f.sk, f.db.Epoch(), head)
}

// push records and applies entries as the apply handler does.
func (f *viewFixture) push(t testing.TB, entries ...storage.Entry) {
	t.Helper()
	f.h.recordPush(f.n, f.sk, entries)
	if _, err := f.db.Apply(entries, Wins); err != nil {
		t.Fatal(err)
	}
}

// entry is a new write of k, stamped now by the storage's clock.
func (f *viewFixture) entry(k, data string) storage.Entry {
	now := f.db.Clock().Now()
	return storage.Entry{Key: k, Created: now, Updated: now, Data: json.RawMessage(data)}
}

func TestHub_HoldsAll(t *testing.T) {
	t.Run("a node the pivot has no view of is triggered", func(t *testing.T) {
		f := newViewFixture(t)
		if f.h.holdsAll(f.n, f.sk) {
			t.Fatal("no view: want trigger")
		}
	})
	t.Run("nothing after the node's pull", func(t *testing.T) {
		f := newViewFixture(t)
		f.pulled(t)
		if !f.h.holdsAll(f.n, f.sk) {
			t.Fatal("empty feed after the pull: want skip")
		}
	})
	t.Run("its own pushes only, writes and deletes", func(t *testing.T) {
		f := newViewFixture(t)
		f.pulled(t)
		_, before, _ := f.db.Changes(f.sk.path, 0, 1<<20)
		f.push(t, f.entry("users/a", `1`), f.entry("users/b", `2`))
		_, after, _ := f.db.Changes(f.sk.path, 0, 1<<20)
		if from, to, held, ok := f.h.heldRange(f.n, f.sk, 0); !ok || from != before || to != after || len(held) != 2 {
			t.Fatalf("held range after the push = %d..%d %v (%d hashes), want %d..%d with 2", from, to, ok, len(held), before, after)
		}
		gone := f.entry("users/a", `1`)
		gone.Deleted, gone.Data = true, nil
		f.push(t, gone)
		if !f.h.holdsAll(f.n, f.sk) {
			t.Fatal("own pushes only: want skip")
		}
		if len(f.n.views[f.sk].own) != 0 {
			t.Fatal("matched entries are forgotten once the view moved past them")
		}
		if !f.h.holdsAll(f.n, f.sk) {
			t.Fatal("again, nothing new: want skip")
		}
	})
	t.Run("another write after the pull", func(t *testing.T) {
		f := newViewFixture(t)
		f.pulled(t)
		if _, err := f.db.Set("users/other", json.RawMessage(`3`)); err != nil {
			t.Fatal(err)
		}
		f.push(t, f.entry("users/a", `1`))
		if f.h.holdsAll(f.n, f.sk) {
			t.Fatal("a change the node did not push: want trigger")
		}
	})
	t.Run("a pushed entry that lost to a newer one", func(t *testing.T) {
		f := newViewFixture(t)
		f.pulled(t)
		old := f.entry("users/a", `"old"`)
		if _, err := f.db.Set("users/a", json.RawMessage(`"newer"`)); err != nil {
			t.Fatal(err)
		}
		f.push(t, old)
		if f.h.holdsAll(f.n, f.sk) {
			t.Fatal("the node lacks the pivot's newer entry: want trigger")
		}
	})
	t.Run("same stamps, other data", func(t *testing.T) {
		f := newViewFixture(t)
		f.pulled(t)
		sent := f.entry("users/a", `"sent"`)
		f.h.recordPush(f.n, f.sk, []storage.Entry{sent})
		stored := sent
		stored.Data = json.RawMessage(`"stored"`)
		if _, err := f.db.Apply([]storage.Entry{stored}, Wins); err != nil {
			t.Fatal(err)
		}
		if f.h.holdsAll(f.n, f.sk) {
			t.Fatal("the feed holds other data than the node pushed: want trigger")
		}
	})
	t.Run("the pivot's data was reset", func(t *testing.T) {
		f := newViewFixture(t)
		f.pulled(t)
		f.db.Clear()
		if f.h.holdsAll(f.n, f.sk) {
			t.Fatal("new epoch: want trigger")
		}
	})
	t.Run("more pushed entries than the pivot remembers", func(t *testing.T) {
		f := newViewFixture(t)
		f.pulled(t)
		batch := make([]storage.Entry, 0, maxOwn+1)
		for i := 0; i <= maxOwn; i++ {
			batch = append(batch, f.entry(fmt.Sprintf("users/%d", i), `0`))
		}
		f.push(t, batch...)
		if f.h.holdsAll(f.n, f.sk) {
			t.Fatal("overflow: want trigger")
		}
		f.pulled(t)
		if !f.h.holdsAll(f.n, f.sk) {
			t.Fatal("a pull to the head starts over: want skip")
		}
	})
}
