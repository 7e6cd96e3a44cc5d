package io_test

import (
	"os"
	"testing"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

type thing struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

// storages makes each kind of real storage the helpers are tested on.
var storages = []struct {
	name string
	make func(t testing.TB) storage.Database
}{
	{"memory", func(testing.TB) storage.Database { return &storage.MemoryStorage{} }},
	{"bolt", func(t testing.TB) storage.Database { return &storage.BoltStorage{Path: t.TempDir()} }},
}

// forEachStorage runs test once per kind of storage, each on its own server.
func forEachStorage(t *testing.T, test func(t *testing.T, s *ooo.Server)) {
	for _, st := range storages {
		t.Run(st.name, func(t *testing.T) {
			db := st.make(t)
			test(t, startServer(t, func(s *ooo.Server) { s.Storage = db }))
		})
	}
}

// startServer starts an ooo server with a fresh MemoryStorage on a free loopback port;
// configure, when not nil, runs before Start. The server closes when the test ends.
func startServer(t testing.TB, configure func(*ooo.Server)) *ooo.Server {
	t.Helper()
	s := &ooo.Server{Silence: true, Storage: &storage.MemoryStorage{}}
	if configure != nil {
		configure(s)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { s.Close(os.Interrupt) })
	return s
}
