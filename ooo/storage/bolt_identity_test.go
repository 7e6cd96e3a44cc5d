package storage_test

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

// startBolt starts a BoltStorage on path and closes it when the test ends.
func startBolt(t testing.TB, path string, hlc *clock.Clock) *storage.BoltStorage {
	t.Helper()
	s := &storage.BoltStorage{Path: path, HLC: hlc}
	if err := s.Start(storage.Options{}); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	t.Cleanup(s.Close)
	return s
}

// copyFile copies a closed storage file, as an operator copying a data folder does.
func copyFile(t testing.TB, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// pushConcurrently writes n new list entries on s from workers goroutines, each named
// as a POST names them (a fresh stamp of s's clock), once start is closed, and returns
// the keys written.
func pushConcurrently(t testing.TB, s storage.Database, n, workers int, start <-chan struct{}) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		var mu sync.Mutex
		var keys []string
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := w; i < n; i += workers {
					k := key.BuildAt("items/*", storage.NewStamp(s))
					if _, err := s.Set(k, json.RawMessage(`{"n":1}`)); err != nil {
						t.Errorf("set %s: %v", k, err)
						return
					}
					mu.Lock()
					keys = append(keys, k)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		out <- keys
	}()
	return out
}

// TestBoltStorage_CopiedFolder starts two storages from one data folder copied while
// closed, as a node started from a copy of another node's folder does. On the code
// before copy detection both stamped with the instance id kept in the file, and
// concurrent writes on them produced the same keys.
func TestBoltStorage_CopiedFolder(t *testing.T) {
	origDir, copyDir := t.TempDir(), t.TempDir()
	first := &storage.BoltStorage{Path: origDir}
	if err := first.Start(storage.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Set("settings", json.RawMessage(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	token, instance := first.Identity()
	first.Close()
	copyFile(t, filepath.Join(origDir, storage.BoltFileName), filepath.Join(copyDir, storage.BoltFileName))

	orig := startBolt(t, origDir, nil)
	dup := startBolt(t, copyDir, nil)
	if t2, i2 := orig.Identity(); t2 != token || i2 != instance {
		t.Fatalf("the original's identity changed to (%q, %d), was (%q, %d)", t2, i2, token, instance)
	}
	dupToken, dupInstance := dup.Identity()
	if dupToken == token {
		t.Fatalf("the copy kept the original's token %q", token)
	}
	if dupInstance == instance || dup.Clock().InstanceID() != dupInstance {
		t.Fatalf("the copy stamps with instance %d (identity %d), the original with %d",
			dup.Clock().InstanceID(), dupInstance, instance)
	}
	if raw, err := dup.Get("settings"); err != nil || len(raw) == 0 {
		t.Fatalf("the copy lost its data: %v", err)
	}

	const each, workers = 4000, 50
	start := make(chan struct{})
	a := pushConcurrently(t, orig, each, workers, start)
	b := pushConcurrently(t, dup, each, workers, start)
	close(start)
	keys := append(<-a, <-b...)
	distinct := make(map[string]bool, len(keys))
	for _, k := range keys {
		distinct[k] = true
	}
	if len(keys) != 2*each || len(distinct) != 2*each {
		t.Fatalf("%d writes gave %d distinct keys, want %d", len(keys), len(distinct), 2*each)
	}

	// The copy's new identity is its own from now on: a restart keeps it.
	dup.Close()
	again := startBolt(t, copyDir, nil)
	if t3, i3 := again.Identity(); t3 != dupToken || i3 != dupInstance {
		t.Fatalf("the copy's identity (%q, %d) after a restart, was (%q, %d)", t3, i3, dupToken, dupInstance)
	}
}

// A file renamed or moved within its file system is the same file: it keeps its
// identity. A copy of a file that is then moved over the original is another file.
func TestBoltStorage_MovedFileKeepsIdentity(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "a", "data.db"), filepath.Join(dir, "b", "data.db")
	s := startBolt(t, from, nil)
	token, instance := s.Identity()
	s.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
	moved := startBolt(t, to, nil)
	if t2, i2 := moved.Identity(); t2 != token || i2 != instance {
		t.Fatalf("identity (%q, %d) after a move, was (%q, %d)", t2, i2, token, instance)
	}
	moved.Close()

	// A restored backup: a copy put back in place of the original.
	backup := filepath.Join(dir, "backup.db")
	copyFile(t, to, backup)
	if err := os.Rename(backup, to); err != nil {
		t.Fatal(err)
	}
	restored := startBolt(t, to, nil)
	if t3, _ := restored.Identity(); t3 == token {
		t.Fatal("a file copied over the original kept its token")
	}
}

// A configured clock gives a new file its id; on an existing file it stamps with the
// file's id, so a copied folder never stamps with the original's id even when the
// program passes its own clock (the chaos suite does, to skew it).
func TestBoltStorage_CopyWithConfiguredClock(t *testing.T) {
	origDir, copyDir := t.TempDir(), t.TempDir()
	given := uint16(1234)
	first := startBolt(t, origDir, clock.New(clock.Options{InstanceID: given}))
	token, instance := first.Identity()
	if instance != given {
		t.Fatalf("a new file with a given clock: instance %d, want %d", instance, given)
	}
	first.Close()
	copyFile(t, filepath.Join(origDir, storage.BoltFileName), filepath.Join(copyDir, storage.BoltFileName))

	dup := startBolt(t, copyDir, clock.New(clock.Options{InstanceID: given}))
	dupToken, dupInstance := dup.Identity()
	if dupToken == token || dupInstance == instance {
		t.Fatalf("copy with a given clock: identity (%q, %d), original (%q, %d): want a new token and id", dupToken, dupInstance, token, instance)
	}
	dup.Close()
	again := startBolt(t, origDir, clock.New(clock.Options{InstanceID: 99}))
	if t2, i2 := again.Identity(); t2 != token || i2 != instance {
		t.Fatalf("the original restarted with another clock: identity (%q, %d), want (%q, %d)", t2, i2, token, instance)
	}
}

// A file written before identity tokens existed gets a token at its next Start and
// keeps its instance id; from then on the token stays.
func TestBoltStorage_FileWithoutToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, storage.BoltFileName)
	s := startBolt(t, dir, nil)
	_, instance := s.Identity()
	s.Close()
	db, err := bolt.Open(file, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket([]byte("meta"))
		if err := m.Delete([]byte("token")); err != nil {
			return err
		}
		return m.Delete([]byte("file"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	upgraded := startBolt(t, dir, nil)
	token, got := upgraded.Identity()
	if token == "" || got != instance {
		t.Fatalf("identity (%q, %d) of an old file, want a token and instance %d", token, got, instance)
	}
	upgraded.Close()
	again := startBolt(t, dir, nil)
	if t2, i2 := again.Identity(); t2 != token || i2 != instance {
		t.Fatalf("identity (%q, %d) after a restart, was (%q, %d)", t2, i2, token, instance)
	}
}
