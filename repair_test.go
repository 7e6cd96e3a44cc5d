package pivot_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// alter replaces k's entry on in, keeping its stamps, without a change the sync would
// send: the way a damaged disk or a bug makes a replica differ while its cursors say
// it is in sync.
func alter(t testing.TB, in *instance, k, data string) {
	t.Helper()
	rep := in.db.(storage.Replica)
	changes, _, err := rep.Changes(k, 0, 1)
	require.NoError(t, err)
	require.Equal(t, 1, len(changes), "entry %s on %s", k, in.name)
	en := changes[0].Entry
	en.Data = []byte(data)
	_, err = rep.Apply([]storage.Entry{en}, func(storage.Entry, storage.Entry) bool { return true })
	require.NoError(t, err)
}

func repair(t testing.TB, in *instance) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(t, in.result.Repair(ctx))
}

// Issue 9, case 4: a value that differs on one side while the cursors agree is found by
// the data comparison and repaired under LWW, on the node or on the pivot, and counted.
func TestRepair_FindsAndRepairsADifferenceTheCursorsMiss(t *testing.T) {
	cfg := testConfig()
	c := startCluster(t, memoryKind, 1, cfg)
	p, node := c.pivot, c.nodes[0]
	for i := range 1000 {
		set(t, p, fmt.Sprintf("users/u%04d", i), fmt.Sprintf(`{"n":%d}`, 5000+i))
	}
	waitConverged(t, c.all(), false)
	repair(t, node)
	st := node.result.Status()
	require.True(t, st.Checks >= 1 && st.Repairs == 0, "an in-sync check repairs nothing: %+v", st)
	require.True(t, st.Keys[0].InSync && !st.Keys[0].LastCheck.IsZero(), "users/* found in sync: %+v", st.Keys[0])

	// The node holds a smaller value under the same version: the pivot's wins.
	alter(t, node, "users/u0421", `{"n":1}`)
	require.True(t, !converged(t, c.all(), false), "the replicas differ")
	repair(t, node)
	require.Equal(t, `{"n":5421}`, get(t, node, "users/u0421"), "the node got the pivot's entry back")
	waitConverged(t, c.all(), false)
	st = node.result.Status()
	require.Equal(t, int64(1), st.Repairs, "one entry repaired: %+v", st)
	require.True(t, !st.Keys[0].InSync, "the check found a difference")

	// The pivot holds a smaller value: the node's wins and is pushed back.
	alter(t, p, "users/u0007", `{"n":0}`)
	eventually(t, waitTimeout, func() bool {
		repair(t, node)
		return get(t, p, "users/u0007") == `{"n":5007}`
	}, "the pivot got the node's entry back: %s", get(t, p, "users/u0007"))
	waitConverged(t, c.all(), false)
	repair(t, node)
	require.True(t, node.result.Status().Keys[0].InSync, "in sync again")
}

// A missing entry and a missing tombstone are differences too.
func TestRepair_MissingEntriesAndTombstones(t *testing.T) {
	cfg := testConfig()
	c := startCluster(t, memoryKind, 1, cfg)
	p, node := c.pivot, c.nodes[0]
	set(t, p, "users/kept", `{"k":1}`)
	set(t, p, "users/gone", `{"g":1}`)
	del(t, p, "users/gone")
	waitConverged(t, c.all(), false)
	// The node loses both, with older states in their place (as a stale copy of its
	// disk would hold): a tombstone older than the entry, a live entry older than the
	// tombstone. Forced in, they make no change the sync sends.
	rep := node.db.(storage.Replica)
	changes, _, err := rep.Changes("users/*", 0, 10)
	require.NoError(t, err)
	for _, ch := range changes {
		old := ch.Version() - 10
		en := storage.Entry{Key: ch.Key, Created: old, Updated: old, Deleted: true}
		if ch.Deleted {
			en = storage.Entry{Key: ch.Key, Created: old, Data: []byte(`{"g":"back"}`)}
		}
		_, err := rep.Apply([]storage.Entry{en}, func(storage.Entry, storage.Entry) bool { return true })
		require.NoError(t, err)
	}
	repair(t, node)
	waitConverged(t, c.all(), false)
	require.Equal(t, `{"k":1}`, get(t, node, "users/kept"), "the entry is back")
	require.Equal(t, "", get(t, node, "users/gone"), "the tombstone is back")
}

func TestRepair_RoutesRefuseBadInput(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	for _, prefix := range []string{"abcd", "zz", "A", " "} {
		status, body := call(t, p, http.MethodGet, "/tree", url.Values{"key": {"users/*"}, "prefix": {prefix}}, "", nil)
		require.Equal(t, http.StatusBadRequest, status, "prefix %q: %s", prefix, body)
	}
	status, body := call(t, p, http.MethodGet, "/tree", url.Values{"key": {"users/*"}}, "", nil)
	require.Equal(t, http.StatusOK, status, body)
	require.True(t, strings.Contains(body, `"children":[`), "the root lists its children: %s", body)
	for _, req := range []string{`{"keys":[]}`, `{"keys":["settings"]}`, `{"keys":["users/*"]}`, `{"keys":["users/a"],"x":1}`, `{`} {
		status, body := call(t, p, http.MethodPost, "/entries", url.Values{"key": {"users/*"}}, req, nil)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", req, body)
	}
	set(t, p, "users/a", `{"a":"<&>"}`)
	status, body = call(t, p, http.MethodPost, "/entries", url.Values{"key": {"users/*"}}, `{"keys":["users/a","users/none"]}`, nil)
	require.Equal(t, http.StatusOK, status, body)
	require.True(t, strings.Contains(body, `"data":{"a":"<&>"}`) && strings.Contains(body, `"next":2`), "the entry, verbatim: %s", body)
}

// alterOnDisk changes one digit of the data of k in a stopped BoltStorage's file,
// behind the storage's back (the record's checksum no longer matches).
func alterOnDisk(t testing.TB, file, k string) {
	t.Helper()
	db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("data"))
		v := append([]byte(nil), b.Get([]byte(k))...)
		for i := len(v) - 1; i >= 30; i-- { // the data starts after the record header
			if v[i] >= '0' && v[i] <= '8' {
				v[i]++
				return b.Put([]byte(k), v)
			}
		}
		return fmt.Errorf("no digit in %s", k)
	}))
}

// Issue 9, case 4: a digit changed inside a value on a node's disk is found (the record
// fails its checksum and counts as missing) and the pivot's value comes back at the
// node's first round, where before the altered value was served forever.
func TestRepair_ValueAlteredOnDisk(t *testing.T) {
	cfg := testConfig()
	c := startCluster(t, boltKind, 1, cfg)
	p, node := c.pivot, c.nodes[0]
	for i := range 200 {
		set(t, p, fmt.Sprintf("users/u%03d", i), fmt.Sprintf(`{"n":%d}`, 1000+i))
	}
	waitConverged(t, c.all(), false)
	// The server's Close stops the engine before the storage (OnClosing), so the
	// node's cursors are saved: only a comparison of the data can find the damage.
	node.stop()
	alterOnDisk(t, node.db.(*ooo.BoltStorage).Path, "users/u042")
	// The first round after a start compares the data: no Repair call needed.
	node = node.restart(boltKind)
	if st := node.result.Status().Keys[0]; st.Unreadable != 1 && get(t, node, "users/u042") != `{"n":1042}` {
		t.Fatalf("the damaged record is neither reported nor repaired yet: %+v", st)
	}
	eventually(t, waitTimeout, func() bool { return get(t, node, "users/u042") == `{"n":1042}` },
		"the pivot's value is back: %q", get(t, node, "users/u042"))
	require.Equal(t, int64(1), node.result.Status().Repairs, "one repair")
	waitConverged(t, []*instance{p, node}, false)
}
