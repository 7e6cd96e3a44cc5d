package pivot_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// instanceID is the writer id db's clock stamps with.
func instanceID(db ooo.Database) uint16 {
	_, id := db.(storage.Identified).Identity()
	return id
}

// postMany sends n POSTs of new entries to list, spread over the instances, from 32
// concurrent writers, and fails on any that is not acknowledged.
func postMany(t *testing.T, insts []*instance, list string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	jobs := make(chan int, n)
	for i := range n {
		jobs <- i
	}
	close(jobs)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				in := insts[i%len(insts)]
				resp, err := client.Post("http://"+in.addr+"/"+list, "application/json", strings.NewReader(fmt.Sprintf(`{"post":%d}`, i)))
				if err != nil {
					errs <- err
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("POST %d on %s: %d", i, in.name, resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Issue 9, case 3: two nodes started from one copied data folder never share a writer
// id, so 4,000 concurrent POSTs on them make 4,000 entries everywhere.
func TestWriters_CopiedDataFolderLosesNoPost(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", boltKind.make(t), "", "", cfg)
	dir := t.TempDir()
	first := startInstance(t, "node1", &ooo.BoltStorage{Path: filepath.Join(dir, "a", "data.db")}, "", p.addr, cfg)
	p.register(first)
	set(t, first, "users/before", `{"written":"before the copy"}`)
	waitConverged(t, []*instance{p, first}, false)
	first.stop()
	raw, err := os.ReadFile(filepath.Join(dir, "a", "data.db"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "b"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b", "data.db"), raw, 0o600))
	first = first.restart(boltKind)
	second := startInstance(t, "node2", &ooo.BoltStorage{Path: filepath.Join(dir, "b", "data.db")}, "", p.addr, cfg)
	p.register(second)
	require.True(t, instanceID(first.db) != instanceID(second.db), "the copy stamps with another id: %d and %d", instanceID(first.db), instanceID(second.db))

	postMany(t, []*instance{first, second}, "users/*", 4000)
	all := []*instance{p, first, second}
	waitConverged(t, all, false)
	for _, in := range all {
		require.Len(t, state(t, in.db, []string{"users/*"}, true), 4001, "entries on %s", in.name)
	}
}

// Random ids that collide (here: forced equal on the pivot and two nodes) are made
// unique by the pivot at first contact.
func TestWriters_PivotMakesCollidingIDsUnique(t *testing.T) {
	cfg := testConfig()
	same := func() ooo.Database {
		return &ooo.MemoryStorage{HLC: clock.New(clock.Options{InstanceID: 7})}
	}
	p := startInstance(t, "pivot", same(), "", "", cfg)
	a := startInstance(t, "node1", same(), "", p.addr, cfg)
	b := startInstance(t, "node2", same(), "", p.addr, cfg)
	p.register(a)
	p.register(b)
	eventually(t, waitTimeout, func() bool {
		ids := map[uint16]bool{instanceID(p.db): true, instanceID(a.db): true, instanceID(b.db): true}
		return len(ids) == 3
	}, "three distinct ids: %d %d %d", instanceID(p.db), instanceID(a.db), instanceID(b.db))
	require.Equal(t, uint16(7), instanceID(p.db), "the pivot keeps its own id")
	postMany(t, []*instance{p, a, b}, "users/*", 3000)
	all := []*instance{p, a, b}
	waitConverged(t, all, false)
	for _, in := range all {
		require.Len(t, state(t, in.db, []string{"users/*"}, true), 3000, "entries on %s", in.name)
	}
}

func TestWriters_RouteRefusesBadInput(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	for _, body := range []string{`{}`, `{"token":"","instance":1}`, `{"token":"t","instance":4096}`, `{"token":"t","instance":-1}`,
		`{"token":"` + strings.Repeat("x", 300) + `","instance":1}`, `{"token":"t","instance":1,"x":2}`, `[`} {
		status, answer := call(t, p, http.MethodPost, "/writer", nil, body, nil)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", body, answer)
	}
	status, answer := call(t, p, http.MethodPost, "/writer", nil, `{"token":"abc","instance":12}`, nil)
	require.Equal(t, http.StatusOK, status, answer)
}
