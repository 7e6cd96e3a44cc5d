package pivot_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// copyFile copies the file at from to to, replacing it.
func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o600))
}

// A pivot restored from an old backup of its data keeps the epoch of the backup and
// sequences lower than what its nodes pulled since: a node's cursor is then past the
// head of the pivot's feed. The answer to its pull carries the head, and the node
// reconciles as after an epoch change (merge): it sends back what the pivot lost and
// receives what the restored pivot took meanwhile, so nothing written before or after
// the restore is lost. Real instances: the pivot on a BoltStorage file that is copied
// while it is stopped, and copied back.
func TestSync_APivotRestoredFromAnOldBackupLosesNothing(t *testing.T) {
	cfg := testConfig()
	dir := t.TempDir()
	data, backup := filepath.Join(dir, "pivot.db"), filepath.Join(dir, "backup.db")
	p := startInstance(t, "pivot", &ooo.BoltStorage{Path: data}, "", "", cfg)
	addr := p.addr
	node := startInstance(t, "node", &ooo.MemoryStorage{}, "", addr, cfg)
	p.register(node)
	for i := range 3 {
		set(t, node, fmt.Sprintf("users/old-%d", i), fmt.Sprintf(`{"i":%d}`, i))
	}
	waitConverged(t, []*instance{p, node}, false)

	p.stop()
	copyFile(t, data, backup)
	p = startInstance(t, "pivot", &ooo.BoltStorage{Path: data}, addr, "", cfg)
	for i := range 5 {
		set(t, node, fmt.Sprintf("users/node-%d", i), fmt.Sprintf(`{"i":%d}`, i))
		set(t, p, fmt.Sprintf("users/hub-%d", i), fmt.Sprintf(`{"i":%d}`, i))
	}
	waitConverged(t, []*instance{p, node}, false)
	// Equal data is not yet a cursor at the head: the node may hold the pivot's
	// writes through its stream or its own pushes before its pull cursor records them.
	_, pivotHead, err := p.db.(storage.Replica).Changes("users/*", 0, 1<<20)
	require.NoError(t, err)
	eventually(t, 10*time.Second, func() bool { return pullCursor(node, "users/*") >= pivotHead },
		"the node's pull cursor reaches the pivot's head %d", pivotHead)
	cursor := pullCursor(node, "users/*")
	merges := node.result.Metrics().Reconciliations["merge"]

	p.stop()
	copyFile(t, backup, data)
	p = startInstance(t, "pivot", &ooo.BoltStorage{Path: data}, addr, "", cfg)
	_, head, err := p.db.(storage.Replica).Changes("users/*", 0, 1<<20)
	require.NoError(t, err)
	require.Less(t, head+1, cursor, "the restored feed's head, even after one more write, is below the node's cursor")
	set(t, p, "users/after-restore", `{"new":true}`)
	waitConverged(t, []*instance{p, node}, false)

	s := state(t, p.db, []string{"users/*"}, true)
	for _, k := range []string{"users/old-0", "users/node-4", "users/hub-4", "users/after-restore"} {
		require.Contains(t, s, k, "the restored pivot holds %s", k)
	}
	require.Len(t, s, 3+5+5+1, "entries on the restored pivot")
	require.Greater(t, node.result.Metrics().Reconciliations["merge"], merges, "the node reconciled")
}
