package storage_test

import (
	"testing"

	"github.com/benitogf/pivot/ooo/storage"
	"github.com/benitogf/pivot/ooo/storage/storagetest"
)

func TestMemoryStorage(t *testing.T) {
	storagetest.Run(t, func(t testing.TB) storagetest.Harness {
		return storagetest.Harness{Open: func(cfg storagetest.Config) storagetest.Storage {
			return &storage.MemoryStorage{HLC: cfg.Clock, TombstoneRetention: cfg.TombstoneRetention}
		}}
	})
}
