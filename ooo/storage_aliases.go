package ooo

import "github.com/benitogf/pivot/ooo/storage"

// Database is an ooo storage (see package storage).
type Database = storage.Database

// MemoryStorage keeps everything in memory; the zero value is ready to Start.
type MemoryStorage = storage.MemoryStorage

// BoltStorage keeps everything in a bbolt file; set Path, then Start.
type BoltStorage = storage.BoltStorage

// StorageOpt are the options a storage is started with.
type StorageOpt = storage.Options

// StorageEvent tells that a key was written ("set") or deleted ("del").
type StorageEvent = storage.Event

// StorageChan is the channel a storage hands out from Watch.
type StorageChan = storage.EventChan

// StorageEventCallback receives every storage event after its broadcast.
type StorageEventCallback func(StorageEvent)

// WatchStorageNoop drains the events of a started storage that no server reads, until
// the storage is closed. It returns at once when db is not active.
func WatchStorageNoop(db Database) {
	events := db.Watch()
	if events == nil {
		return
	}
	for range events {
	}
}
