package ooo_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// alterStored changes, with bbolt directly while no server holds the file, the first
// digit of the data {"n":<digit>} stored for each key by change.
func alterStored(t *testing.T, file string, change map[string]func(digit byte) byte) {
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
		for k, fn := range change {
			v := bytes.Clone(data.Get([]byte(k)))
			i := bytes.Index(v, []byte(`{"n":`))
			if i < 0 {
				return fmt.Errorf("no data in the record of %s: %q", k, v)
			}
			i += len(`{"n":`)
			v[i] = fn(v[i])
			if err := data.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestServer_UnreadableRecord is issue 9's case 4 over HTTP: a stored record changed
// on disk used to be served as it was (a digit changed) or make GET of its key panic in
// the handler and GET of its list answer 500 (data no longer JSON). Now GET of such a
// key answers 500 with the reason, and its list answers 200 with the other entries and
// says how many it left out.
func TestServer_UnreadableRecord(t *testing.T) {
	file := filepath.Join(t.TempDir(), "data.db")
	first := &ooo.Server{Silence: true, Storage: &ooo.BoltStorage{Path: file}}
	if err := first.Start("localhost:0"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		expect(t, first, http.MethodPost, "/users/"+k, `{"n":1}`, http.StatusOK, "")
	}
	first.Close(os.Interrupt)

	alterStored(t, file, map[string]func(byte) byte{
		"users/b": func(byte) byte { return 'x' },     // no longer JSON
		"users/c": func(d byte) byte { return d + 1 }, // still JSON, not what was written
	})
	s := start(t, func(s *ooo.Server) { s.Storage = &ooo.BoltStorage{Path: file} })

	expect(t, s, http.MethodGet, "/users/a", "", http.StatusOK, "")
	for _, k := range []string{"users/b", "users/c"} {
		res := expect(t, s, http.MethodGet, "/"+k, "", http.StatusInternalServerError, "")
		if !strings.Contains(res.body, ooo.ErrCorrupt.Error()) {
			t.Fatalf("GET %s: body %q does not give the reason", k, res.body)
		}
	}
	list := expect(t, s, http.MethodGet, "/users/*", "", http.StatusOK, "")
	if !strings.Contains(list.body, `"users/a"`) || strings.Contains(list.body, "users/b") || strings.Contains(list.body, "users/c") {
		t.Fatalf("list %s: want users/a alone", list.body)
	}
	if got := list.header.Get(ooo.HeaderUnreadable); got != "2" {
		t.Fatalf("list: %s %q, want 2", ooo.HeaderUnreadable, got)
	}
	keys := expect(t, s, http.MethodGet, "/", "", http.StatusOK, "")
	if got := keys.header.Get(ooo.HeaderUnreadable); got != "2" || strings.Contains(keys.body, "users/b") {
		t.Fatalf("keys %s: %s %q", keys.body, ooo.HeaderUnreadable, got)
	}

	// A write replaces an unreadable record, and the list is whole again.
	expect(t, s, http.MethodPost, "/users/b", `{"n":2}`, http.StatusOK, "")
	list = expect(t, s, http.MethodGet, "/users/*", "", http.StatusOK, "")
	if !strings.Contains(list.body, `"users/b"`) || list.header.Get(ooo.HeaderUnreadable) != "1" {
		t.Fatalf("list after a write: %s, %s %q", list.body, ooo.HeaderUnreadable, list.header.Get(ooo.HeaderUnreadable))
	}
}

// dataPage returns the offset in file of the live leaf page that holds mark.
func dataPage(t *testing.T, file string, mark []byte) int64 {
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
			info, err := tx.Page((from + i) / int(size))
			if err != nil {
				return err
			}
			if info != nil && info.Type == "leaf" {
				found = int64(from+i) / size * size
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

// TestServer_DamagedPageWhileServing is issue 9's case 5 on a running server: a page of
// its bolt file overwritten under it made the first read that met it panic inside
// bbolt. Now that GET answers 500 and the server goes on serving the other keys.
func TestServer_DamagedPageWhileServing(t *testing.T) {
	file := filepath.Join(t.TempDir(), "data.db")
	st := &ooo.BoltStorage{Path: file}
	if err := st.Start(ooo.StorageOpt{}); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	base := st.Clock().Now() - n
	var entries []storage.Entry
	for i := range n {
		entries = append(entries, storage.Entry{Key: fmt.Sprintf("users/%05d", i), Created: base + int64(i),
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"name":"user number %d"}`, i, i))})
	}
	if _, err := st.Apply(entries, func(storage.Entry, storage.Entry) bool { return true }); err != nil {
		t.Fatal(err)
	}
	st.Close()
	off := dataPage(t, file, []byte(`{"n":1500,`))

	s := start(t, func(s *ooo.Server) { s.Storage = &ooo.BoltStorage{Path: file} })
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0x5A}, 4096), off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	res := expect(t, s, http.MethodGet, "/users/01500", "", http.StatusInternalServerError, "")
	if !strings.Contains(res.body, ooo.ErrCorrupt.Error()) {
		t.Fatalf("GET of a key on the damaged page: %q does not give the reason", res.body)
	}
	expect(t, s, http.MethodGet, "/users/00010", "", http.StatusOK, "")
	expect(t, s, http.MethodGet, "/users/*", "", http.StatusInternalServerError, "")
	expect(t, s, http.MethodPost, "/users/01500", `{"n":1}`, http.StatusInternalServerError, "")
	expect(t, s, http.MethodPost, "/users/00010", `{"n":1}`, http.StatusOK, "")
	expect(t, s, http.MethodGet, "/users/00010", "", http.StatusOK, "")
}
