package storage_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/storage"
)

// The tests of this file damage real bolt files the way disks and operators do (cut
// short, overwritten in the middle, one byte of one record changed) and check that the
// storage answers with errors wrapping ErrCorrupt, keeps serving what is readable, and
// that replication can repair what is not. A panic anywhere fails them by ending the
// test binary.

// damageKey names the n-th entry of filledBolt.
func damageKey(n int) string { return fmt.Sprintf("users/%06d", n) }

// filledBolt creates a bolt file holding n entries users/000000... with data
// {"n":<n>,"name":"..."}, written through the storage and then closed.
func filledBolt(t testing.TB, n int) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "data.db")
	s := &storage.BoltStorage{Path: file}
	if err := s.Start(storage.Options{}); err != nil {
		t.Fatal(err)
	}
	base := s.Clock().Now() - int64(n)
	const batch = 2000
	for start := 0; start < n; start += batch {
		var entries []storage.Entry
		for i := start; i < min(start+batch, n); i++ {
			entries = append(entries, storage.Entry{
				Key:     damageKey(i),
				Created: base + int64(i),
				Data:    json.RawMessage(fmt.Sprintf(`{"n":%d,"name":"entry number %d of the damage tests"}`, i, i)),
			})
		}
		if _, err := s.Apply(entries, pivot.Wins); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	return file
}

// alterRecord opens file with bbolt directly (the storage must be closed) and replaces
// the stored record of k with change(record).
func alterRecord(t testing.TB, file, k string, change func(record []byte) []byte) {
	t.Helper()
	db, err := bolt.Open(file, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	err = db.Update(func(tx *bolt.Tx) error {
		data := tx.Bucket([]byte("data"))
		v := data.Get([]byte(k))
		if v == nil {
			return fmt.Errorf("no record for %q", k)
		}
		return data.Put([]byte(k), change(bytes.Clone(v)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// changeDigit changes the first digit of the record's JSON data: the record stays JSON
// but no longer holds what was written.
func changeDigit(t testing.TB) func([]byte) []byte {
	return func(v []byte) []byte {
		i := bytes.Index(v, []byte(`{"n":`))
		if i < 0 {
			t.Fatalf("no data in record %q", v)
		}
		i += len(`{"n":`)
		if v[i] == '9' {
			v[i] = '8'
		} else {
			v[i]++
		}
		return v
	}
}

// openDamaged starts a storage on file and closes it at the end of the test.
func openDamaged(t testing.TB, file string) *storage.BoltStorage {
	t.Helper()
	s := &storage.BoltStorage{Path: file}
	if err := s.Start(storage.Options{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// livePage returns the offset of a page of file that bbolt has in use as a leaf or
// branch and that holds the bytes mark, so damage written there is met by reads.
func livePage(t testing.TB, file string, mark []byte) int64 {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(file, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	size := int64(db.Info().PageSize)
	found := int64(-1)
	err = db.View(func(tx *bolt.Tx) error {
		for from := 0; found < 0; {
			i := bytes.Index(raw[from:], mark)
			if i < 0 {
				return fmt.Errorf("%q is on no live page", mark)
			}
			page := int64(from+i) / size
			info, err := tx.Page(int(page))
			if err != nil {
				return err
			}
			if info != nil && info.Type == "leaf" {
				found = page * size
			}
			from += i + 1
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// pageOfType returns the offset of the first page of file whose bbolt type is typ.
func pageOfType(t testing.TB, file, typ string) int64 {
	t.Helper()
	db, err := bolt.Open(file, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	found := int64(-1)
	err = db.View(func(tx *bolt.Tx) error {
		for p := 2; found < 0; p++ {
			info, err := tx.Page(p)
			if err != nil {
				return err
			}
			if info == nil {
				return fmt.Errorf("no %s page", typ)
			}
			if info.Type == typ {
				found = int64(p) * int64(db.Info().PageSize)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// livePagesIn counts the pages bbolt has in use (leaf or branch) in [from, to) of file.
func livePagesIn(t testing.TB, file string, from, to int64) int {
	t.Helper()
	db, err := bolt.Open(file, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	size := int64(db.Info().PageSize)
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		for p := from / size; p < to/size; p++ {
			info, err := tx.Page(int(p))
			if err != nil {
				return err
			}
			if info != nil && (info.Type == "leaf" || info.Type == "branch") {
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// garbage is n bytes that are no bbolt page.
func garbage(n int) []byte {
	g := make([]byte, n)
	for i := range g {
		g[i] = byte(i*131 + 7)
	}
	return g
}

func writeAt(t testing.TB, file string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBoltStorage_DamagedFile is issue 9's case 5: a damaged file used to pass Start and
// kill the process at the first read. Start now refuses it with ErrCorrupt.
func TestBoltStorage_DamagedFile(t *testing.T) {
	const n = 20000
	t.Run("TruncatedToHalf", func(t *testing.T) {
		file := filledBolt(t, n)
		// Big values rewritten with other sizes, as a live node holds: bbolt's free
		// list then lands in a gap early in the file, so the cut leaves it whole and
		// bbolt's own open succeeds, as in the issue, while pages the tree still
		// references are gone.
		s := &storage.BoltStorage{Path: file}
		if err := s.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		for i := range 40 {
			big := fmt.Sprintf(`{"n":0,"pad":%q}`, strings.Repeat("x", (i%7+1)*40<<10))
			if _, err := s.Set(damageKey(i%10), json.RawMessage(big)); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(file, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		s = &storage.BoltStorage{Path: file}
		err = s.Start(storage.Options{})
		if !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("start of a truncated file: %v, want ErrCorrupt", err)
		}
		if s.Active() {
			t.Fatal("a storage that failed to start is active")
		}
	})
	t.Run("GarbageInTheMiddle", func(t *testing.T) {
		file := filledBolt(t, n)
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		const size = 64 << 10
		mid := fi.Size() / 2
		if livePagesIn(t, file, mid, mid+size) == 0 {
			t.Fatal("the middle of the file holds no live page: the test would damage nothing")
		}
		writeAt(t, file, mid, garbage(size))
		err = (&storage.BoltStorage{Path: file}).Start(storage.Options{})
		if !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("start of a file with garbage in the middle: %v, want ErrCorrupt", err)
		}
	})
	t.Run("GarbageOnTheFreeList", func(t *testing.T) {
		// bbolt panics while opening a file whose free list page is garbage, with the
		// file open and locked; Start must refuse it before, so that once the file is
		// restored the next Start succeeds at once.
		file := filledBolt(t, 1000)
		pristine, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		off := pageOfType(t, file, "freelist")
		writeAt(t, file, off, garbage(4096))
		s := &storage.BoltStorage{Path: file}
		if err := s.Start(storage.Options{}); !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("start with garbage on the free list: %v, want ErrCorrupt", err)
		}
		if err := os.WriteFile(file, pristine, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(storage.Options{}); err != nil {
			t.Fatalf("start of the restored file: %v", err)
		}
		s.Close()
	})
	t.Run("GarbageAnywhere", func(t *testing.T) {
		// Wherever 64 KiB of garbage land, Start either refuses the file or serves it,
		// each read answering or failing with ErrCorrupt; nothing panics.
		file := filledBolt(t, 3000)
		pristine, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		refused, served := 0, 0
		defer func() { t.Logf("garbage at %d places: Start refused %d, served %d", refused+served, refused, served) }()
		for off := int64(0); off < int64(len(pristine)); off += 48 << 10 {
			if err := os.WriteFile(file, pristine, 0o600); err != nil {
				t.Fatal(err)
			}
			writeAt(t, file, off, garbage(64<<10))
			s := &storage.BoltStorage{Path: file}
			if err := s.Start(storage.Options{}); err != nil {
				if !errors.Is(err, storage.ErrCorrupt) {
					t.Fatalf("garbage at %d: start: %v, want nil or ErrCorrupt", off, err)
				}
				refused++
				continue
			}
			served++
			readAll(t, s, 3000)
			s.Close()
		}
	})
}

// readAll reads every key and the list, accepting only answers or ErrCorrupt.
func readAll(t testing.TB, s *storage.BoltStorage, n int) (failed int) {
	t.Helper()
	for i := range n {
		if _, err := s.Get(damageKey(i)); err != nil {
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("get %s: %v, want nil or ErrCorrupt", damageKey(i), err)
			}
			failed++
		}
	}
	if _, err := s.Get("users/*"); err != nil && !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("list: %v, want nil or ErrCorrupt", err)
	}
	if _, _, err := s.Changes("users/*", 0, n+1); err != nil && !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("changes: %v, want nil or ErrCorrupt", err)
	}
	return failed
}

// TestBoltStorage_DamageWhileOpen damages the file under a running storage, where
// Start's check cannot help: a read or a write that meets a damaged page fails with
// ErrCorrupt (bbolt's panic, or the memory fault of a read past the end of the file,
// is recovered), the other keys keep being served, and the process lives on.
func TestBoltStorage_DamageWhileOpen(t *testing.T) {
	const n = 5000
	file := filledBolt(t, n)
	victim := damageKey(2500)
	off := livePage(t, file, []byte(`{"n":2500,`)) // only the data bucket holds it
	s := openDamaged(t, file)

	writeAt(t, file, off, garbage(4096))
	if _, err := s.Get(victim); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("get of a key on the damaged page: %v, want ErrCorrupt", err)
	}
	if _, err := s.Get(damageKey(10)); err != nil {
		t.Fatalf("get of a key on a sound page: %v", err)
	}
	if _, err := s.Set(victim, json.RawMessage(`{"n":1}`)); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("set of a key on the damaged page: %v, want ErrCorrupt", err)
	}
	if _, err := s.Set(damageKey(10), json.RawMessage(`{"n":2}`)); err != nil {
		t.Fatalf("set of a key on a sound page, after a failed commit: %v", err)
	}
	if failed := readAll(t, s, n); failed == 0 || failed == n {
		t.Fatalf("%d of %d reads failed: want some, not all", failed, n)
	}

	// Cut the file under the storage: reads of the pages past the new end fault.
	if err := os.Truncate(file, 16<<10); err != nil {
		t.Fatal(err)
	}
	failed := readAll(t, s, n)
	if failed == 0 {
		t.Fatal("every read of a truncated file succeeded")
	}
	t.Logf("after the file was cut under the storage, %d of %d reads failed with ErrCorrupt", failed, n)
}

// TestBoltStorage_UnreadableRecord changes one digit inside one record's data on disk,
// which issue 9's case 4 found served forever. The record now fails its checksum: Start
// works, Get of that key fails with ErrCorrupt, lists and the feed leave it out and
// report it, and a remote entry applied over it repairs it.
func TestBoltStorage_UnreadableRecord(t *testing.T) {
	const n = 20
	file := filledBolt(t, n)
	victim, other := damageKey(7), damageKey(8)
	alterRecord(t, file, victim, changeDigit(t))
	alterRecord(t, file, other, changeDigit(t))
	s := openDamaged(t, file)

	if got, err := s.Damaged(""); err != nil || strings.Join(got, ",") != victim+","+other {
		t.Fatalf("damaged after start: %v %v, want [%s %s]", got, err, victim, other)
	}
	if _, err := s.Get(victim); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("get of the altered record: %v, want ErrCorrupt", err)
	}
	if _, err := s.Get(damageKey(6)); err != nil {
		t.Fatalf("get of a sound record: %v", err)
	}
	raw, err := s.Get("users/*")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var list []struct{ Path string }
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != n-2 || strings.Contains(string(raw), victim) {
		t.Fatalf("list holds %d entries (%s), want the %d readable ones", len(list), raw, n-2)
	}
	if objs, err := s.GetN("users/*", n); err != nil || len(objs) != n-2 {
		t.Fatalf("GetN: %d objects, %v", len(objs), err)
	}
	if keys, err := s.KeysRange("users/*", 0, 1<<62); err != nil || len(keys) != n-2 {
		t.Fatalf("KeysRange: %d keys, %v", len(keys), err)
	}
	if keys, err := s.Keys(); err != nil || strings.Contains(string(keys), victim) {
		t.Fatalf("Keys: %s, %v", keys, err)
	}
	changes, _, err := s.Changes("users/*", 0, 100)
	if err != nil || len(changes) != n-2 {
		t.Fatalf("changes: %d, %v; want %d", len(changes), err, n-2)
	}

	// Writes see the unreadable record as absent.
	if _, err := s.Patch(other, json.RawMessage(`{"x":1}`)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("patch of an unreadable record: %v, want ErrNotFound", err)
	}
	if err := s.Del(other); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("del of an unreadable record: %v, want ErrNotFound", err)
	}
	if _, err := s.Set(other, json.RawMessage(`{"n":"set again"}`)); err != nil {
		t.Fatalf("set over an unreadable record: %v", err)
	}

	// Replication: a good copy from a peer replaces the unreadable record.
	good := storage.Entry{Key: victim, Created: s.Clock().Now() - 1e6, Data: json.RawMessage(`{"n":7,"name":"from the pivot"}`)}
	applied, err := s.Apply([]storage.Entry{good}, pivot.Wins)
	if err != nil || len(applied) != 1 {
		t.Fatalf("apply of a good copy: %v applied, %v", applied, err)
	}
	raw, err = s.Get(victim)
	if err != nil || !strings.Contains(string(raw), "from the pivot") {
		t.Fatalf("get after the repair: %s, %v", raw, err)
	}
	if got, err := s.Damaged(""); err != nil || len(got) != 0 {
		t.Fatalf("damaged after the repairs: %v %v", got, err)
	}
	changes, _, err = s.Changes("users/*", 0, 100)
	if err != nil || len(changes) != n {
		t.Fatalf("changes after the repairs: %d, %v; want %d", len(changes), err, n)
	}
	seen := map[string]bool{}
	for _, c := range changes {
		if seen[c.Key] {
			t.Fatalf("%s appears twice in the feed", c.Key)
		}
		seen[c.Key] = true
	}

	// The repair is on disk.
	s.Close()
	again := openDamaged(t, file)
	if got, err := again.Damaged(""); err != nil || len(got) != 0 {
		t.Fatalf("damaged after a restart: %v %v", got, err)
	}
}

// TestBoltStorage_FormatOneRecords checks records written before checksums existed
// (format 1): they are read as before, and one whose data is no longer JSON is
// unreadable instead of making reads panic or fail whole.
func TestBoltStorage_FormatOneRecords(t *testing.T) {
	file := filledBolt(t, 3)
	formatOne := func(data string) func([]byte) []byte {
		return func(v []byte) []byte {
			// format 1: [0] 1, seq, created, updated (8 bytes each), flags, data; the
			// fields of the format 2 record are kept.
			out := append([]byte{1}, v[5:29]...)
			out = append(out, v[29])
			return append(out, data...)
		}
	}
	alterRecord(t, file, damageKey(0), formatOne(`{"n":0,"old":true}`))
	alterRecord(t, file, damageKey(1), formatOne(`{"n":1,"old":`))
	s := openDamaged(t, file)
	raw, err := s.Get(damageKey(0))
	if err != nil || !strings.Contains(string(raw), `"old":true`) {
		t.Fatalf("get of a format 1 record: %s, %v", raw, err)
	}
	if _, err := s.Get(damageKey(1)); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("get of a format 1 record that is not JSON: %v, want ErrCorrupt", err)
	}
	if objs, err := s.GetN("users/*", 10); err != nil || len(objs) != 2 {
		t.Fatalf("GetN: %d objects, %v; want 2", len(objs), err)
	}
	if got, err := s.Damaged("users/*"); err != nil || len(got) != 1 || got[0] != damageKey(1) {
		t.Fatalf("damaged: %v %v", got, err)
	}
}
