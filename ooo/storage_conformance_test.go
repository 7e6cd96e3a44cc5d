package ooo_test

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/meta"
)

// runStorageHelpers runs every exported storage helper on a server over db.
func runStorageHelpers(t *testing.T, db ooo.Database) {
	s := start(t, func(s *ooo.Server) { s.Storage = db })
	t.Run("Object", func(t *testing.T) { ooo.StorageObjectTest(s, t) })
	t.Run("List", func(t *testing.T) { ooo.StorageListTest(s, t) })
	t.Run("GetN", func(t *testing.T) { ooo.StorageGetNTest(s, t, 10) })
	t.Run("GetNOdd", func(t *testing.T) { ooo.StorageGetNTest(s, t, 7) })
	t.Run("KeysRange", func(t *testing.T) { ooo.StorageKeysRangeTest(s, t, 10) })
	t.Run("KeysRangeOdd", func(t *testing.T) { ooo.StorageKeysRangeTest(s, t, 5) })
}

func TestStorageHelpers_Memory(t *testing.T) {
	runStorageHelpers(t, &ooo.MemoryStorage{})
}

func TestStorageHelpers_Bolt(t *testing.T) {
	runStorageHelpers(t, &ooo.BoltStorage{Path: filepath.Join(t.TempDir(), "db")})
}

// Storages that each break one rule the helpers check. They are only ever run by
// TestStorageHelpers_FailBrokenStorage, in a child process, since a helper that
// catches the fault fails its test.

// missingIsEmpty answers a missing key with no data and no error.
type missingIsEmpty struct{ *ooo.MemoryStorage }

func (s missingIsEmpty) Get(k string) ([]byte, error) {
	raw, err := s.MemoryStorage.Get(k)
	if errors.Is(err, ooo.ErrNotFound) {
		return nil, nil
	}
	return raw, err
}

// listsReversed sorts lists the wrong way round.
type listsReversed struct{ *ooo.MemoryStorage }

func (s listsReversed) Get(k string) ([]byte, error) {
	if strings.Contains(k, "*") {
		return s.MemoryStorage.GetDescending(k)
	}
	return s.MemoryStorage.Get(k)
}

// oldestFirst returns the oldest items from GetN.
type oldestFirst struct{ *ooo.MemoryStorage }

func (s oldestFirst) GetN(path string, limit int) ([]meta.Object, error) {
	return s.MemoryStorage.GetNAscending(path, limit)
}

// rangeIgnored returns every matching key from KeysRange.
type rangeIgnored struct{ *ooo.MemoryStorage }

func (s rangeIgnored) KeysRange(path string, from, to int64) ([]string, error) {
	keys, err := s.MemoryStorage.KeysRange(path, 0, 1<<62)
	if err == nil && to < from {
		return keys, nil
	}
	return keys, err
}

// globDeleteTooDeep deletes deeper keys too on a glob delete.
type globDeleteTooDeep struct{ *ooo.MemoryStorage }

func (s globDeleteTooDeep) Del(k string) error {
	if k != "*" {
		return s.MemoryStorage.Del(k)
	}
	var st ooo.Stats
	raw, err := s.MemoryStorage.Keys()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	for _, each := range st.Keys {
		if err := s.MemoryStorage.Del(each); err != nil {
			return err
		}
	}
	return nil
}

// brokenStorages maps a case name to the storage, the helper that must catch it and a
// fragment of the failure it must report.
var brokenStorages = map[string]struct {
	db     func() ooo.Database
	helper func(*ooo.Server, *testing.T)
	report string
}{
	"missing key without error": {func() ooo.Database { return missingIsEmpty{&ooo.MemoryStorage{}} }, ooo.StorageObjectTest, "want nothing and ErrNotFound"},
	"lists reversed":            {func() ooo.Database { return listsReversed{&ooo.MemoryStorage{}} }, ooo.StorageListTest, "want test/123 then test/456"},
	"GetN oldest first":         {func() ooo.Database { return oldestFirst{&ooo.MemoryStorage{}} }, func(s *ooo.Server, t *testing.T) { ooo.StorageGetNTest(s, t, 6) }, "GetN(test/*, 1): item 0"},
	"KeysRange ignores range":   {func() ooo.Database { return rangeIgnored{&ooo.MemoryStorage{}} }, func(s *ooo.Server, t *testing.T) { ooo.StorageKeysRangeTest(s, t, 6) }, "KeysRange(test/*, item 0, item 2)"},
	"glob delete too deep":      {func() ooo.Database { return globDeleteTooDeep{&ooo.MemoryStorage{}} }, ooo.StorageListTest, "Del(*) removed deeper keys"},
}

const brokenEnv = "OOO_TEST_BROKEN_STORAGE"

// TestStorageHelpers_BrokenChild runs one broken storage through its helper; it is
// meant to fail, and runs only as the child of TestStorageHelpers_FailBrokenStorage.
func TestStorageHelpers_BrokenChild(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("run by TestStorageHelpers_FailBrokenStorage")
	}
	c, ok := brokenStorages[name]
	if !ok {
		t.Fatalf("no broken storage %q", name)
	}
	s := start(t, func(s *ooo.Server) { s.Storage = c.db() })
	c.helper(s, t)
}

// TestStorageHelpers_FailBrokenStorage: each helper fails, with a message naming the
// fault, on a storage that breaks a rule it checks.
func TestStorageHelpers_FailBrokenStorage(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(brokenStorages)) {
		t.Run(name, func(t *testing.T) {
			expectChildFailure(t, "TestStorageHelpers_BrokenChild", brokenEnv, name, brokenReport(name))
		})
	}
}

func brokenReport(name string) string { return brokenStorages[name].report }
