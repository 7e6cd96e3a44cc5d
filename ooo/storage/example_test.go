package storage_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

// A storage on its own: writes, their events, reads, and the change feed that keeps the
// tombstone of a deleted key.
func ExampleMemoryStorage() {
	db := &storage.MemoryStorage{}
	if err := db.Start(storage.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	events := db.Watch() // one event per write, in write order

	index, err := db.Set("things/1", json.RawMessage(`{"name":"a"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	ev := <-events
	fmt.Println("set:", index, ev.Operation, ev.Key)

	raw, _ := db.Get("things/*")
	list, _ := meta.DecodeList(raw)
	fmt.Println("list:", len(list), list[0].Path, string(list[0].Data))

	if err := db.Del("things/1"); err != nil {
		fmt.Println(err)
		return
	}
	ev = <-events
	_, err = db.Get("things/1")
	fmt.Println("del:", ev.Operation, ev.Key, errors.Is(err, storage.ErrNotFound))

	changes, next, _ := db.Changes("things/*", 0, 100)
	fmt.Println("feed:", len(changes), changes[0].Key, changes[0].Deleted, next)
	// Output:
	// set: 1 set things/1
	// list: 1 things/1 {"name":"a"}
	// del: del things/1 true
	// feed: 1 things/1 true 2
}

// A persistent storage: what one BoltStorage wrote, a later one on the same path reads,
// with the same epoch, as after a process restart.
func ExampleBoltStorage() {
	dir, err := os.MkdirTemp("", "ooo-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	first := &storage.BoltStorage{Path: dir}
	if err := first.Start(storage.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := first.Set("settings", json.RawMessage(`{"theme":"dark"}`)); err != nil {
		fmt.Println(err)
		return
	}
	epoch := first.Epoch()
	first.Close()

	second := &storage.BoltStorage{Path: dir}
	if err := second.Start(storage.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	defer second.Close()
	raw, err := second.Get("settings")
	if err != nil {
		fmt.Println(err)
		return
	}
	o, _ := meta.Decode(raw)
	fmt.Println(string(o.Data), second.Epoch() == epoch)
	// Output: {"theme":"dark"} true
}

// Replication applies remote entries under an order the caller supplies (pivot passes
// its last-write-wins order); only the entries that win are stored and reported.
func ExampleReplica() {
	db := &storage.MemoryStorage{}
	if err := db.Start(storage.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	newer := func(incoming, current storage.Entry) bool {
		return incoming.Version() > current.Version()
	}
	stamp := db.Clock().Now()
	applied, err := db.Apply([]storage.Entry{
		{Key: "notes/a", Created: stamp - 2, Data: json.RawMessage(`"old"`)},
		{Key: "notes/a", Created: stamp - 2, Updated: stamp - 1, Data: json.RawMessage(`"new"`)},
		{Key: "notes/a", Created: stamp - 3, Data: json.RawMessage(`"older"`)}, // loses
	}, newer)
	fmt.Println(len(applied), err)
	raw, _ := db.Get("notes/a")
	o, _ := meta.Decode(raw)
	fmt.Println(string(o.Data))
	// Output:
	// 2 <nil>
	// "new"
}
