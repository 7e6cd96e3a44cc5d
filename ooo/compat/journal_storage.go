package main

import (
	"encoding/json"
	"sync"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/meta"
)

// journalStorage is the program's own Database: a MemoryStorage that also keeps a
// journal of the writes that succeeded ("set <key>", "del <key>"). It implements every
// method of upstream's Database by hand, as a user writing a storage would, instead of
// embedding, so the interface's method set and signatures are checked by the compiler.
type journalStorage struct {
	mem ooo.MemoryStorage

	mu      sync.Mutex
	journal []string
}

var _ ooo.Database = (*journalStorage)(nil)

func (s *journalStorage) note(op, k string, err error) {
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal = append(s.journal, op+" "+k)
}

// entries returns a copy of the journal.
func (s *journalStorage) entries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.journal...)
}

func (s *journalStorage) Active() bool                   { return s.mem.Active() }
func (s *journalStorage) Start(opt ooo.StorageOpt) error { return s.mem.Start(opt) }
func (s *journalStorage) Close()                         { s.mem.Close() }
func (s *journalStorage) Keys() ([]byte, error)          { return s.mem.Keys() }
func (s *journalStorage) Clear()                         { s.mem.Clear() }
func (s *journalStorage) Watch() ooo.StorageChan         { return s.mem.Watch() }

func (s *journalStorage) KeysRange(path string, from, to int64) ([]string, error) {
	return s.mem.KeysRange(path, from, to)
}

func (s *journalStorage) Get(k string) ([]byte, error) { return s.mem.Get(k) }

func (s *journalStorage) GetDescending(k string) ([]byte, error) { return s.mem.GetDescending(k) }

func (s *journalStorage) GetN(path string, limit int) ([]meta.Object, error) {
	return s.mem.GetN(path, limit)
}

func (s *journalStorage) GetNAscending(path string, limit int) ([]meta.Object, error) {
	return s.mem.GetNAscending(path, limit)
}

func (s *journalStorage) GetNRange(path string, limit int, from, to int64) ([]meta.Object, error) {
	return s.mem.GetNRange(path, limit, from, to)
}

func (s *journalStorage) Set(k string, data json.RawMessage) (string, error) {
	index, err := s.mem.Set(k, data)
	s.note("set", k, err)
	return index, err
}

func (s *journalStorage) Patch(k string, data json.RawMessage) (string, error) {
	index, err := s.mem.Patch(k, data)
	s.note("set", k, err)
	return index, err
}

func (s *journalStorage) SetWithMeta(k string, data json.RawMessage, created, updated int64) (string, error) {
	index, err := s.mem.SetWithMeta(k, data, created, updated)
	s.note("set", k, err)
	return index, err
}

func (s *journalStorage) GetAndLock(k string) ([]byte, error) { return s.mem.GetAndLock(k) }

func (s *journalStorage) SetAndUnlock(k string, data json.RawMessage) (string, error) {
	index, err := s.mem.SetAndUnlock(k, data)
	s.note("set", k, err)
	return index, err
}

func (s *journalStorage) Unlock(k string) error { return s.mem.Unlock(k) }

func (s *journalStorage) Del(k string) error {
	err := s.mem.Del(k)
	s.note("del", k, err)
	return err
}
