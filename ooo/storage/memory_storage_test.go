package storage_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/benitogf/pivot/ooo/storage"
)

func TestMemoryStorage_Smoke(t *testing.T) {
	db := &storage.MemoryStorage{}
	if db.Active() {
		t.Fatal("never started storage is active")
	}
	if err := db.Start(storage.Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < 3; i++ {
		if _, err := db.Set("a/b", json.RawMessage(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Set("a/c", json.RawMessage(`nope`)); !errors.Is(err, storage.ErrInvalidData) {
		t.Fatalf("non-JSON data: %v", err)
	}
	if err := db.Del("a/b"); err != nil {
		t.Fatal(err)
	}
	ch := db.Watch()
	for i, want := range []string{"set", "set", "set", "del"} {
		ev := <-ch
		if ev.Operation != want || ev.Key != "a/b" {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	changes, next, err := db.Changes("", 0, 10)
	if err != nil || len(changes) != 1 || !changes[0].Deleted || next != 4 {
		t.Fatalf("changes %+v next %d err %v", changes, next, err)
	}
}
