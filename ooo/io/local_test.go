package io_test

import (
	"errors"
	"testing"

	"github.com/benitogf/pivot/ooo"
	oio "github.com/benitogf/pivot/ooo/io"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

func TestGet(t *testing.T) {
	forEachStorage(t, func(t *testing.T, s *ooo.Server) {
		t.Run("missing key", func(t *testing.T) {
			_, err := oio.Get[thing](s, "nothing")
			if !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		})
		t.Run("glob", func(t *testing.T) {
			for _, p := range []string{"things/*", "a/*/c"} {
				if _, err := oio.Get[thing](s, p); !errors.Is(err, oio.ErrGlobPath) {
					t.Errorf("Get(%q): err = %v, want ErrGlobPath", p, err)
				}
			}
		})
		t.Run("round trip", func(t *testing.T) {
			if err := oio.Set(s, "box", thing{Name: "a", N: 1}); err != nil {
				t.Fatal(err)
			}
			m, err := oio.Get[thing](s, "box")
			if err != nil {
				t.Fatal(err)
			}
			if m.Data != (thing{Name: "a", N: 1}) || m.Index != "box" || m.Created == 0 || m.Updated != 0 {
				t.Fatalf("got %+v", m)
			}
			if err := oio.Set(s, "box", thing{Name: "b", N: 2}); err != nil {
				t.Fatal(err)
			}
			m2, err := oio.Get[thing](s, "box")
			if err != nil {
				t.Fatal(err)
			}
			if m2.Data.N != 2 || m2.Created != m.Created || m2.Updated <= m.Created {
				t.Fatalf("after update: got %+v, before %+v", m2, m)
			}
		})
		t.Run("data of another type", func(t *testing.T) {
			if _, err := s.Storage.Set("word", []byte(`"text"`)); err != nil {
				t.Fatal(err)
			}
			if _, err := oio.Get[thing](s, "word"); err == nil {
				t.Fatal("decoding a string into a struct must fail")
			}
			m, err := oio.Get[string](s, "word")
			if err != nil || m.Data != "text" {
				t.Fatalf("got %+v, %v", m, err)
			}
		})
		t.Run("nil server", func(t *testing.T) {
			if _, err := oio.Get[thing](nil, "box"); !errors.Is(err, oio.ErrNoServer) {
				t.Fatalf("err = %v, want ErrNoServer", err)
			}
			if err := oio.Set(&ooo.Server{}, "box", thing{}); !errors.Is(err, oio.ErrNoServer) {
				t.Fatalf("err = %v, want ErrNoServer", err)
			}
		})
	})
}

func TestSet_RefusesGlobsAndBadKeys(t *testing.T) {
	s := startServer(t, nil)
	if err := oio.Set(s, "things/*", thing{}); !errors.Is(err, oio.ErrGlobPath) {
		t.Fatalf("err = %v, want ErrGlobPath", err)
	}
	if err := oio.Set(s, "bad key", thing{}); !errors.Is(err, storage.ErrInvalidPath) {
		t.Fatalf("err = %v, want ErrInvalidPath", err)
	}
	if err := oio.Set(s, "fn", func() {}); err == nil {
		t.Fatal("a value JSON cannot encode must be an error")
	}
}

func TestGetList(t *testing.T) {
	forEachStorage(t, func(t *testing.T, s *ooo.Server) {
		list, err := oio.GetList[thing](s, "things/*")
		if err != nil || list == nil || len(list) != 0 {
			t.Fatalf("empty list: got %#v, %v; want an empty non-nil slice", list, err)
		}
		if _, err := oio.GetList[thing](s, "things"); !errors.Is(err, oio.ErrNotListPath) {
			t.Fatalf("err = %v, want ErrNotListPath", err)
		}

		a, err := oio.Push(s, "things/*", thing{N: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Storage.Set("things/odd", []byte(`"not a thing"`)); err != nil {
			t.Fatal(err)
		}
		b, err := oio.Push(s, "things/*", thing{N: 2})
		if err != nil {
			t.Fatal(err)
		}
		list, err = oio.GetList[thing](s, "things/*")
		if err != nil {
			t.Fatal(err)
		}
		// The item that does not decode is skipped; the rest come oldest first.
		if len(list) != 2 || list[0].Index != a || list[1].Index != b || list[0].Data.N != 1 || list[1].Data.N != 2 {
			t.Fatalf("got %+v (pushed %s, %s)", list, a, b)
		}
		if odd, err := oio.GetList[string](s, "things/*"); err != nil || len(odd) != 1 || odd[0].Data != "not a thing" {
			t.Fatalf("GetList[string]: got %+v, %v", odd, err)
		}
	})
}

func TestPush(t *testing.T) {
	forEachStorage(t, func(t *testing.T, s *ooo.Server) {
		for _, p := range []string{"things", "things/*/x", "*/things"} {
			if _, err := oio.Push(s, p, thing{}); !errors.Is(err, oio.ErrNotListPath) {
				t.Errorf("Push(%q): err = %v, want ErrNotListPath", p, err)
			}
		}

		// Indexes come from the storage's clock: hex stamps, unique and increasing even
		// for pushes in a tight loop.
		const n = 200
		replica, ok := s.Storage.(storage.Replica)
		if !ok {
			t.Fatal("MemoryStorage must implement storage.Replica")
		}
		before := replica.Clock().Last()
		indexes := make([]string, n)
		for i := range indexes {
			index, err := oio.Push(s, "things/*", thing{N: i})
			if err != nil {
				t.Fatal(err)
			}
			indexes[i] = index
		}
		for i, index := range indexes {
			stamp := key.Decode(index)
			if stamp <= before || key.Encode(stamp) != index {
				t.Fatalf("index %q is not a hex stamp after %d", index, before)
			}
			if i > 0 && stamp <= key.Decode(indexes[i-1]) {
				t.Fatalf("index %d (%s) does not follow %s", i, index, indexes[i-1])
			}
		}
		list, err := oio.GetList[thing](s, "things/*")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != n {
			t.Fatalf("got %d items, want %d: pushes overwrote each other", len(list), n)
		}
		for i, m := range list {
			if m.Index != indexes[i] || m.Data.N != i {
				t.Fatalf("item %d: got %+v, want index %s value %d", i, m, indexes[i], i)
			}
		}
	})
}

func TestDel(t *testing.T) {
	forEachStorage(t, func(t *testing.T, s *ooo.Server) {
		if err := oio.Del(s, "box"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleting a missing key: err = %v, want ErrNotFound", err)
		}
		if err := oio.Set(s, "box", thing{N: 1}); err != nil {
			t.Fatal(err)
		}
		if err := oio.Del(s, "box"); err != nil {
			t.Fatal(err)
		}
		if _, err := oio.Get[thing](s, "box"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("after delete: err = %v, want ErrNotFound", err)
		}

		for i := 0; i < 3; i++ {
			if _, err := oio.Push(s, "things/*", thing{N: i}); err != nil {
				t.Fatal(err)
			}
		}
		if err := oio.Del(s, "things/*"); err != nil {
			t.Fatal(err)
		}
		if list, err := oio.GetList[thing](s, "things/*"); err != nil || len(list) != 0 {
			t.Fatalf("after glob delete: got %+v, %v", list, err)
		}
		if err := oio.Del(s, "things/*"); err != nil {
			t.Fatalf("a glob delete that matches nothing: %v", err)
		}
	})
}

func TestPush_StorageNotStarted(t *testing.T) {
	for _, st := range storages {
		t.Run(st.name, func(t *testing.T) {
			// A server that was never started: its storage has no clock yet. Push must
			// report the inactive storage, not dereference the missing clock.
			s := &ooo.Server{Storage: st.make(t)}
			if _, err := oio.Push(s, "things/*", thing{}); !errors.Is(err, storage.ErrNotActive) {
				t.Fatalf("Push before Start: err = %v, want ErrNotActive", err)
			}
		})
	}
}
