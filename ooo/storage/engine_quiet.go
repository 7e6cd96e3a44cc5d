package storage

import "github.com/benitogf/pivot/ooo/meta"

// QuietReader is implemented by storages that can read a key without calling the
// BeforeRead option. An ooo server reads through it when it re-reads a value for a
// websocket broadcast: the broadcast follows a change the storage already holds, so a
// hook that refreshes data before reads (pivot's sync-on-read, which pulls from the
// pivot) has nothing to add there, and would otherwise run once per write for every
// pool the write touches, on the server's single event dispatcher. Client reads (REST
// GET, a websocket's first snapshot, package io) keep calling Get, and BeforeRead.
//
// MemoryStorage and BoltStorage implement it. A Database of another kind that does not
// implement it is read with Get (see GetQuiet), so its broadcasts call whatever hook
// its Get calls. A type that embeds MemoryStorage or BoltStorage and overrides Get
// inherits their GetQuiet, which does not go through the override: override GetQuiet
// too when the two must agree.
type QuietReader interface {
	// GetQuiet is Get without the BeforeRead call: the same result and the same errors.
	GetQuiet(key string) ([]byte, error)
}

// GetQuiet reads key from db without calling BeforeRead when db implements
// QuietReader, and with db.Get otherwise.
func GetQuiet(db Database, key string) ([]byte, error) {
	if q, ok := db.(QuietReader); ok {
		return q.GetQuiet(key)
	}
	return db.Get(key)
}

// GetQuiet is Get without the BeforeRead call (QuietReader): the stored object of k, or
// for a glob the JSON array of the matching objects sorted by Created ascending.
func (e *engine) GetQuiet(k string) ([]byte, error) {
	return e.readSorted(k, meta.SortAsc)
}
