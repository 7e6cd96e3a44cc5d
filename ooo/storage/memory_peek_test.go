package storage_test

import (
	"encoding/json"
	"testing"

	"github.com/benitogf/pivot/ooo/storage"
)

// TestMemoryStorage_Peek: Peek predicts the stamps of the next write without making it,
// across a new key, a stored one, a deleted one and a closed storage.
func TestMemoryStorage_Peek(t *testing.T) {
	s := &storage.MemoryStorage{}
	if c, u := s.Peek("a", 7); c != 7 || u != 0 {
		t.Fatalf("never started: Peek = %d, %d; want 7, 0", c, u)
	}
	if err := s.Start(storage.Options{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range s.Watch() {
		}
	}()
	if c, u := s.Peek("a", 7); c != 7 || u != 0 {
		t.Fatalf("new key: Peek = %d, %d; want 7, 0", c, u)
	}
	if _, err := s.Set("a", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	created := getCreated(t, s, "a")
	now := created + 1000
	if c, u := s.Peek("a", now); c != created || u != now {
		t.Fatalf("stored key: Peek = %d, %d; want %d, %d", c, u, created, now)
	}
	if got := getCreated(t, s, "a"); got != created {
		t.Fatalf("Peek changed the key: created %d, was %d", got, created)
	}
	if c, u := s.Peek("a/*", now); c != now || u != 0 {
		t.Fatalf("glob: Peek = %d, %d; want %d, 0", c, u, now)
	}
	if err := s.Del("a"); err != nil {
		t.Fatal(err)
	}
	if c, u := s.Peek("a", now); c != now || u != 0 {
		t.Fatalf("deleted key: Peek = %d, %d; want %d, 0", c, u, now)
	}
	if _, err := s.Set("b", json.RawMessage(`2`)); err != nil {
		t.Fatal(err)
	}
	b := getCreated(t, s, "b")
	s.Close()
	if c, u := s.Peek("b", now); c != b || u != now {
		t.Fatalf("closed storage: Peek = %d, %d; want %d, %d (the data survives Close)", c, u, b, now)
	}
}

func getCreated(t *testing.T, s storage.Database, k string) int64 {
	t.Helper()
	raw, err := s.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Created int64 `json:"created"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatal(err)
	}
	return o.Created
}
