package ooo_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/internal/wstest"
)

func TestServer_StartAddress(t *testing.T) {
	s := start(t, nil)
	if !strings.HasPrefix(s.Address, "127.0.0.1:") || strings.HasSuffix(s.Address, ":0") {
		t.Fatalf("Address = %q, want 127.0.0.1:<port>", s.Address)
	}
	if !s.Active() {
		t.Fatal("not active after Start")
	}
	if err := s.Start("localhost:0"); !errors.Is(err, ooo.ErrActive) {
		t.Fatalf("second Start: %v, want ErrActive", err)
	}
}

func TestServer_StartFailureLeavesNothingRunning(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	store := &ooo.MemoryStorage{}
	s := &ooo.Server{Silence: true, Storage: store}
	if err := s.Start(busy.Addr().String()); err == nil {
		s.Close(nil)
		t.Fatal("Start on a busy address succeeded")
	}
	if s.Active() || store.Active() {
		t.Fatal("a failed Start left the server or its storage active")
	}
	s.Close(nil) // harmless
}

func TestServer_CloseDisconnectsClients(t *testing.T) {
	closed := 0
	s := &ooo.Server{Silence: true, OnClose: func() { closed++ }}
	if err := s.Start("localhost:0"); err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, s, "/a", nil)
	clock := subscribe(t, s, "/", nil)
	sub.WaitFrames(1)
	clock.WaitFrames(1)
	s.Close(os.Interrupt)
	for _, c := range []*wstest.Client{sub, clock} {
		err := c.WaitClosed()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("client closed with %v, want a going-away close frame", err)
		}
	}
	if s.Active() || s.Storage.Active() {
		t.Fatal("server or storage still active after Close")
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Close(nil)
		}()
	}
	wg.Wait()
	if closed != 1 {
		t.Fatalf("OnClose ran %d times, want 1", closed)
	}
	if _, err := http.Get("http://" + s.Address + "/"); err == nil {
		t.Fatal("closed server still answers HTTP")
	}
}

func TestServer_CloseWithWritesInFlight(t *testing.T) {
	s := &ooo.Server{Silence: true}
	if err := s.Start("localhost:0"); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	var ok atomic.Int64
	stop := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := client.Post("http://"+s.Address+"/load/*", "application/json", strings.NewReader(`{"a":1}`))
				if err != nil {
					continue // refused once the server is down
				}
				if res.StatusCode == http.StatusOK {
					ok.Add(1)
				}
				res.Body.Close()
			}
		}()
	}
	for i := 0; i < 4; i++ {
		sub := subscribe(t, s, "/load/*", nil)
		sub.WaitFrames(1)
	}
	poll(t, "writes to flow", func() bool { return ok.Load() > 20 })
	done := make(chan struct{})
	go func() {
		s.Close(os.Interrupt)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close hung with writes in flight")
	}
	close(stop)
	wg.Wait()
}

func TestServer_RestartOnSameAddress(t *testing.T) {
	router := mux.NewRouter()
	router.HandleFunc("/custom", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("mine")) })
	s := &ooo.Server{Silence: true, Router: router}
	if err := s.Start("localhost:0"); err != nil {
		t.Fatal(err)
	}
	addr := s.Address
	expect(t, s, "POST", "/kept", `{"v":1}`, http.StatusOK, "")
	s.Close(nil)

	var err error
	for i := 0; i < 100; i++ { // the port may take a moment to be free again
		if err = s.Start(addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer s.Close(nil)
	if s.Address != addr {
		t.Fatalf("restarted on %s, want %s", s.Address, addr)
	}
	expect(t, s, "GET", "/custom", "", http.StatusOK, "mine")
	obj := decodeObject(t, expect(t, s, "GET", "/kept", "", http.StatusOK, "").body)
	if string(obj.Data) != `{"v":1}` {
		t.Fatalf("data after restart: %s", obj.Data)
	}
	routes := 0
	_ = router.Walk(func(*mux.Route, *mux.Router, []*mux.Route) error { routes++; return nil })
	if routes != 2 {
		t.Fatalf("router has %d routes after a restart, want 2 (user + ooo)", routes)
	}
	sub := subscribe(t, s, "/kept", nil)
	sub.WaitState(expected(t, s, "kept"))
	expect(t, s, "PATCH", "/kept", `{"v":2}`, http.StatusOK, "")
	sub.WaitState(expected(t, s, "kept"))
}

func TestServer_WaitClose(t *testing.T) {
	closed := make(chan struct{})
	s := start(t, func(s *ooo.Server) {
		// A channel set before WaitClose stands in for the process's signals, so the
		// test never signals the test binary itself.
		s.Signal = make(chan os.Signal, 1)
		s.OnClose = func() { close(closed) }
	})
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		s.WaitClose()
	}()
	s.Signal <- syscall.SIGTERM
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("WaitClose did not return after a signal")
	}
	select {
	case <-closed:
	default:
		t.Fatal("WaitClose returned without closing the server (OnClose did not run)")
	}
	if s.Active() || s.Storage.Active() {
		t.Fatal("the server or its storage is still active after WaitClose")
	}
}

// startRecorder is a storage that records the options Start got.
type startRecorder struct {
	*ooo.MemoryStorage
	got ooo.StorageOpt
}

func (r *startRecorder) Start(opts ooo.StorageOpt) error {
	r.got = opts
	return r.MemoryStorage.Start(opts)
}

func TestServer_StartPassesStorageOptions(t *testing.T) {
	rec := &startRecorder{MemoryStorage: &ooo.MemoryStorage{}}
	reads := 0
	start(t, func(s *ooo.Server) {
		s.Storage = rec
		s.NoBroadcastKeys = []string{"quiet/*"}
		s.BeforeRead = func(string) { reads++ }
		s.DbOpt = "opaque"
	})
	if rec.got.DbOpt != "opaque" || len(rec.got.NoBroadcastKeys) != 1 || rec.got.NoBroadcastKeys[0] != "quiet/*" {
		t.Fatalf("storage started with %+v", rec.got)
	}
	if rec.got.BeforeRead == nil {
		t.Fatal("BeforeRead did not reach the storage")
	}
	rec.got.BeforeRead("k")
	if reads != 1 {
		t.Fatal("the storage got another BeforeRead than the server's")
	}
}

func TestServer_BoltStorageKeepsDataAcrossServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	first := &ooo.Server{Silence: true, Storage: &ooo.BoltStorage{Path: path}}
	if err := first.Start("localhost:0"); err != nil {
		t.Fatal(err)
	}
	expect(t, first, "POST", "/b/*", `{"x":1}`, http.StatusOK, "")
	first.Close(nil)
	second := start(t, func(s *ooo.Server) { s.Storage = &ooo.BoltStorage{Path: path} })
	if list := decodeList(t, expect(t, second, "GET", "/b/*", "", http.StatusOK, "").body); len(list) != 1 {
		t.Fatalf("list after reopening: %v", list)
	}
}

func TestServer_ClientDefault(t *testing.T) {
	s := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+s.Address+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || s.Client.Timeout == 0 {
		t.Fatalf("default client: %d, timeout %s", res.StatusCode, s.Client.Timeout)
	}
}
