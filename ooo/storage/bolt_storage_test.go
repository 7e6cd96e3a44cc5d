package storage_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/benitogf/pivot/ooo/storage"
	"github.com/benitogf/pivot/ooo/storage/storagetest"
)

func TestBoltStorage(t *testing.T) {
	storagetest.Run(t, func(t testing.TB) storagetest.Harness {
		dir := t.TempDir()
		return storagetest.Harness{
			Persistent: true,
			Open: func(cfg storagetest.Config) storagetest.Storage {
				return &storage.BoltStorage{Path: dir, HLC: cfg.Clock, TombstoneRetention: cfg.TombstoneRetention}
			},
		}
	})
}

func TestBoltStorage_Start(t *testing.T) {
	t.Run("LockedByAnotherOpener", func(t *testing.T) {
		dir := t.TempDir()
		first := &storage.BoltStorage{Path: dir}
		if err := first.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		second := &storage.BoltStorage{Path: dir, OpenTimeout: 50 * time.Millisecond}
		err := second.Start(storage.Options{})
		if !errors.Is(err, storage.ErrLocked) {
			t.Fatalf("second opener: %v, want ErrLocked", err)
		}
		if second.Active() {
			t.Fatal("a storage that failed to start is active")
		}
		first.Close()
		if err := second.Start(storage.Options{}); err != nil {
			t.Fatalf("start after the first closed: %v", err)
		}
		second.Close()
	})
	t.Run("CorruptFile", func(t *testing.T) {
		for name, content := range map[string][]byte{
			"short":   []byte("not a database"),
			"garbage": bytes.Repeat([]byte{0xA5}, 64<<10),
		} {
			file := filepath.Join(t.TempDir(), name+".db")
			if err := os.WriteFile(file, content, 0o600); err != nil {
				t.Fatal(err)
			}
			err := (&storage.BoltStorage{Path: file}).Start(storage.Options{})
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("%s file: %v, want ErrCorrupt", name, err)
			}
		}
	})
	t.Run("ForeignBoltFile", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(file, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("theirs"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		err = (&storage.BoltStorage{Path: file}).Start(storage.Options{})
		if !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("foreign bbolt file: %v, want ErrCorrupt", err)
		}
	})
	t.Run("PathIsDirectoryOrFile", func(t *testing.T) {
		dir := t.TempDir()
		inDir := &storage.BoltStorage{Path: dir}
		if err := inDir.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		inDir.Close()
		if _, err := os.Stat(filepath.Join(dir, storage.BoltFileName)); err != nil {
			t.Fatalf("directory path: %v", err)
		}
		file := filepath.Join(dir, "nested", "deeper", "data.db")
		asFile := &storage.BoltStorage{Path: file}
		if err := asFile.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		asFile.Close()
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("file path: %v", err)
		}
		if err := (&storage.BoltStorage{}).Start(storage.Options{}); err == nil {
			t.Fatal("empty Path accepted")
		}
	})
	t.Run("InstanceIDKept", func(t *testing.T) {
		dir := t.TempDir()
		a := &storage.BoltStorage{Path: dir}
		if err := a.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		id := a.Clock().InstanceID()
		a.Close()
		b := &storage.BoltStorage{Path: dir}
		if err := b.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if b.Clock().InstanceID() != id {
			t.Fatalf("instance id %d after restart, was %d", b.Clock().InstanceID(), id)
		}
	})
}
