package client_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/client"
	"github.com/benitogf/pivot/ooo/storage"
)

// waitFor bounds every wait on a callback.
const waitFor = 10 * time.Second

type thing struct {
	N int `json:"n"`
}

// startServer starts an ooo server on a free loopback port with db (a fresh
// MemoryStorage when nil) and closes it when the test ends.
func startServer(t testing.TB, db storage.Database) *ooo.Server {
	t.Helper()
	return startServerAt(t, db, "127.0.0.1:0")
}

func startServerAt(t testing.TB, db storage.Database, address string) *ooo.Server {
	t.Helper()
	return startServerWith(t, db, address, nil)
}

// startServerWith is startServerAt with a hook that configures the server before Start.
func startServerWith(t testing.TB, db storage.Database, address string, configure func(*ooo.Server)) *ooo.Server {
	t.Helper()
	if db == nil {
		db = &storage.MemoryStorage{}
	}
	s := &ooo.Server{Silence: true, Storage: db}
	if configure != nil {
		configure(s)
	}
	if err := s.Start(address); err != nil {
		t.Fatalf("start server at %s: %v", address, err)
	}
	t.Cleanup(func() { s.Close(os.Interrupt) })
	return s
}

// recorder runs Subscribe and hands each callback to the test, in order.
type recorder[T any] struct {
	states chan []client.Meta[T]
	done   chan struct{}
	cancel context.CancelFunc
}

// subscribe starts Subscribe[T] on path of host; the subscription ends with the test.
func subscribe[T any](t testing.TB, host, path string, header map[string][]string) *recorder[T] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder[T]{states: make(chan []client.Meta[T], 100), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		client.Subscribe(ctx, "ws", host, path, header, func(state []client.Meta[T]) {
			r.states <- state
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// next returns the next callback's state, failing the test after waitFor.
func (r *recorder[T]) next(t testing.TB, what string) []client.Meta[T] {
	t.Helper()
	select {
	case s := <-r.states:
		return s
	case <-time.After(waitFor):
		t.Fatalf("no callback within %s while waiting for %s", waitFor, what)
		return nil
	}
}
