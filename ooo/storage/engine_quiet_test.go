package storage_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/benitogf/pivot/ooo/storage"
)

// quietStorage is what TestGetQuiet needs of a storage.
type quietStorage interface {
	storage.Database
	storage.QuietReader
}

// TestGetQuiet: GetQuiet answers what Get answers, errors included, and never calls
// BeforeRead, on both storages; GetQuiet of a Database without it falls back to Get.
func TestGetQuiet(t *testing.T) {
	storages := map[string]func(t *testing.T) quietStorage{
		"memory": func(*testing.T) quietStorage { return &storage.MemoryStorage{} },
		"bolt": func(t *testing.T) quietStorage {
			return &storage.BoltStorage{Path: filepath.Join(t.TempDir(), "db")}
		},
	}
	for name, open := range storages {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			var mu sync.Mutex
			var calls []string
			hook := func(k string) {
				mu.Lock()
				calls = append(calls, k)
				mu.Unlock()
			}
			if _, err := db.GetQuiet("a/b"); !errors.Is(err, storage.ErrNotActive) {
				t.Fatalf("GetQuiet before Start: %v, want ErrNotActive", err)
			}
			if err := db.Start(storage.Options{BeforeRead: hook}); err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, k := range []string{"a/b", "a/c", "a/b/c"} {
				if _, err := db.Set(k, json.RawMessage(`{"k":"`+k+`"}`)); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range []string{"a/b", "a/*", "a/*/c", "*", "missing", "x/*"} {
				want, wantErr := db.Get(k)
				mu.Lock()
				calls = nil
				mu.Unlock()
				got, err := db.GetQuiet(k)
				if !bytes.Equal(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("GetQuiet(%s) = %s, %v; Get = %s, %v", k, got, err, want, wantErr)
				}
				if via, err := storage.GetQuiet(db, k); !bytes.Equal(via, want) || (err == nil) != (wantErr == nil) {
					t.Fatalf("storage.GetQuiet(%s) = %s, %v; Get = %s, %v", k, via, err, want, wantErr)
				}
				mu.Lock()
				if len(calls) != 0 {
					t.Fatalf("GetQuiet(%s) called BeforeRead with %v", k, calls)
				}
				mu.Unlock()
			}
			if _, err := db.GetQuiet("a//b"); !errors.Is(err, storage.ErrInvalidPath) {
				t.Fatalf("GetQuiet of an invalid key: %v, want ErrInvalidPath", err)
			}
			if _, err := db.GetQuiet("missing"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("GetQuiet of a missing key: %v, want ErrNotFound", err)
			}
			// A Database that does not implement QuietReader is read with Get, hook and all.
			plain := struct{ storage.Database }{db}
			if _, ok := any(plain).(storage.QuietReader); ok {
				t.Fatal("the wrapper should hide GetQuiet")
			}
			mu.Lock()
			calls = nil
			mu.Unlock()
			if _, err := storage.GetQuiet(plain, "a/b"); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(calls) != 1 || calls[0] != "a/b" {
				t.Fatalf("the fallback called BeforeRead with %v, want [a/b]", calls)
			}
		})
	}
}
