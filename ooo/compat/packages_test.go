package main

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/messages"
	"github.com/benitogf/pivot/ooo/meta"
)

func TestKey(t *testing.T) {
	built := key.Build("books/*")
	index, ok := strings.CutPrefix(built, "books/")
	if !ok || key.Decode(index) == 0 || key.LastIndex(built) != index {
		t.Fatalf("Build(books/*) = %q, want books/<hex stamp>", built)
	}
	if got := key.Build("books/one"); got != "books/one" {
		t.Fatalf("Build(books/one) = %q, want it unchanged", got)
	}
	for _, c := range []struct {
		pattern, k string
		match      bool
	}{
		{"books/*", "books/1", true},
		{"books/*", "books/a/b", false},
		{"a/*/c", "a/b/c", true},
		{"*", "books", true},
		{"books/1", "books/1", true},
		{"books/1", "books/2", false},
	} {
		if got := key.Match(c.pattern, c.k); got != c.match {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.k, got, c.match)
		}
	}
	if !key.Peer("books/1", "books/*") || key.Peer("books/1", "notes/*") {
		t.Error("Peer does not match in both directions")
	}
	if !key.Contains([]string{"notes/*", cacheGlob}, "cache/page") || key.Contains([]string{cacheGlob}, "books/1") {
		t.Error("Contains does not Peer-match the list")
	}
	for k, valid := range map[string]bool{"a": true, "abc": true, "a/b/c": true, "*/a": true, "a//b": false, "/a": false, "a/": false, "a**": false} {
		if key.IsValid(k) != valid {
			t.Errorf("IsValid(%q) = %v, want %v", k, !valid, valid)
		}
	}
	if key.LastIndex("plain") != "plain" || key.LastIndex("a/b/c") != "c" {
		t.Error("LastIndex is not the text after the last slash")
	}
	if !key.GlobRegex.MatchString("books/1") {
		t.Error("GlobRegex refuses books/1")
	}
}

func TestMeta(t *testing.T) {
	stored := meta.New(&meta.Object{Created: 2, Index: "b", Path: "list/b", Data: json.RawMessage(`{"n":2}`)})
	if !strings.HasSuffix(string(stored), "\n") {
		t.Fatalf("New = %q, want the stored form ending in a newline", stored)
	}
	o, err := meta.Decode(stored)
	if err != nil || o.Created != 2 || o.Index != "b" || o.Path != "list/b" || string(o.Data) != `{"n":2}` {
		t.Fatalf("Decode(New(...)) = %+v, %v", o, err)
	}
	from, err := meta.DecodeFromReader(strings.NewReader(string(stored)))
	if err != nil || from.Path != o.Path {
		t.Fatalf("DecodeFromReader = %+v, %v", from, err)
	}
	list := []meta.Object{o, {Created: 1, Index: "a", Path: "list/a", Data: json.RawMessage(`{"n":1}`)}, {Created: 3, Index: "c", Path: "list/c", Data: json.RawMessage(`{"n":3}`)}}
	sort.Slice(list, meta.SortAsc(list))
	if list[0].Index != "a" || list[2].Index != "c" {
		t.Fatalf("SortAsc: %+v", list)
	}
	sort.Slice(list, meta.SortDesc(list))
	if list[0].Index != "c" || list[2].Index != "a" {
		t.Fatalf("SortDesc: %+v", list)
	}
	encoded, err := meta.Encode(list)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := meta.DecodeList(encoded)
	if err != nil || len(decoded) != 3 || decoded[0].Index != "c" {
		t.Fatalf("DecodeList(Encode(list)) = %+v, %v", decoded, err)
	}
	if fromReader, err := meta.DecodeListFromReader(strings.NewReader(string(encoded))); err != nil || len(fromReader) != 3 {
		t.Fatalf("DecodeListFromReader = %+v, %v", fromReader, err)
	}
}

func TestMessages_DecodeReader(t *testing.T) {
	raw, err := messages.DecodeReader(strings.NewReader(`{"title":"Body"}`))
	if err != nil {
		t.Fatal(err)
	}
	var b Book
	if err := json.Unmarshal(raw, &b); err != nil || b.Title != "Body" {
		t.Fatalf("DecodeReader = %s, %v", raw, err)
	}
	if _, err := messages.DecodeReader(strings.NewReader(`{"title":`)); err == nil {
		t.Fatal("DecodeReader accepted a cut JSON value")
	}
}

// TestStorage_Standalone uses a storage no server reads from: started with its own
// options, drained with WatchStorageNoop.
func TestStorage_Standalone(t *testing.T) {
	var reads recorder
	db := &ooo.MemoryStorage{}
	if err := db.Start(ooo.StorageOpt{BeforeRead: reads.add, NoBroadcastKeys: []string{cacheGlob}}); err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		ooo.WatchStorageNoop(db)
		close(drained)
	}()
	holder := ooo.Storage{Active: db.Active(), Db: db}
	if !holder.Active {
		t.Fatal("the started storage is not active")
	}

	if _, err := holder.Db.Set("books/one", json.RawMessage(`{"title":"One"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Set("cache/page", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	raw, err := db.Get("books/one")
	if err != nil || !reads.has("books/one") {
		t.Fatalf("Get(books/one) = %s, %v; BeforeRead called: %v", raw, err, reads.has("books/one"))
	}
	o, err := meta.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	if created, updated := db.Peek("books/one", now); created != o.Created || updated != now {
		t.Fatalf("Peek(books/one) = %d, %d; want %d, %d", created, updated, o.Created, now)
	}
	if created, updated := db.Peek("books/new", now); created != now || updated != 0 {
		t.Fatalf("Peek(books/new) = %d, %d; want %d, 0", created, updated, now)
	}
	if _, err := db.Patch("books/one", json.RawMessage(`{"title":"One"}`)); !errors.Is(err, ooo.ErrNoop) {
		t.Fatalf("Patch that changes nothing = %v, want ErrNoop", err)
	}
	if _, err := db.Patch("books/none", json.RawMessage(`{"title":"x"}`)); !errors.Is(err, ooo.ErrNotFound) {
		t.Fatalf("Patch of a missing key = %v, want ErrNotFound", err)
	}
	if _, err := db.Set("a//b", json.RawMessage(`{}`)); !errors.Is(err, ooo.ErrInvalidPath) {
		t.Fatalf("Set(a//b) = %v, want ErrInvalidPath", err)
	}

	// GetAndLock / SetAndUnlock: a read-modify-write under the key's lock.
	if _, err := db.GetAndLock("books/one"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetAndUnlock("books/one", json.RawMessage(`{"title":"One, locked"}`)); err != nil {
		t.Fatal(err)
	}
	// (Unlock of a key that is not locked is not tried: upstream's is a fatal error.)
	if _, err := db.GetAndLock("books/one"); err != nil {
		t.Fatal(err)
	}
	if err := db.Unlock("books/one"); err != nil {
		t.Fatalf("Unlock(books/one): %v", err)
	}

	// Close ends WatchStorageNoop; data survives a new Start.
	db.Close()
	select {
	case <-drained:
	case <-time.After(waitFor):
		t.Fatal("WatchStorageNoop did not return after Close")
	}
	if db.Active() || db.Watch() != nil {
		t.Fatal("the closed storage is active or still hands out its channel")
	}
	if err := db.Start(ooo.StorageOpt{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	go ooo.WatchStorageNoop(db)
	if raw, err := db.Get("books/one"); err != nil || !strings.Contains(string(raw), "One, locked") {
		t.Fatalf("Get(books/one) after a restart = %s, %v", raw, err)
	}
}
