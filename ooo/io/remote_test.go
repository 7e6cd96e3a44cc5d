package io_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
	oio "github.com/benitogf/pivot/ooo/io"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

func httpClient() *http.Client { return &http.Client{Timeout: 5 * time.Second} }

func TestRemoteGetAndSet(t *testing.T) {
	s := startServer(t, nil)
	c := httpClient()

	_, err := oio.RemoteGet[thing](c, false, s.Address, "box", nil)
	var status *oio.StatusError
	if !errors.As(err, &status) || status.StatusCode != http.StatusNotFound || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing key: err = %v, want a 404 StatusError that is ErrNotFound", err)
	}

	if err := oio.RemoteSet(c, false, s.Address, "box", thing{Name: "a", N: 1}, nil); err != nil {
		t.Fatal(err)
	}
	remote, err := oio.RemoteGet[thing](c, false, s.Address, "box", nil)
	if err != nil {
		t.Fatal(err)
	}
	local, err := oio.Get[thing](s, "box")
	if err != nil {
		t.Fatal(err)
	}
	if remote != local || remote.Data != (thing{Name: "a", N: 1}) {
		t.Fatalf("remote %+v, local %+v", remote, local)
	}

	// nil client: http.DefaultClient, bounded by DefaultTimeout.
	if m, err := oio.RemoteGet[thing](nil, false, s.Address, "/box", nil); err != nil || m != local {
		t.Fatalf("nil client, leading slash: got %+v, %v", m, err)
	}
}

func TestRemote_RefusesWrongPathsWithoutCalling(t *testing.T) {
	c := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("no request may be made for a path refused up front")
		return nil, errors.New("refused")
	})}
	if _, err := oio.RemoteGet[thing](c, false, "127.0.0.1:1", "things/*", nil); !errors.Is(err, oio.ErrGlobPath) {
		t.Errorf("RemoteGet glob: %v", err)
	}
	if err := oio.RemoteSet(c, false, "127.0.0.1:1", "things/*", thing{}, nil); !errors.Is(err, oio.ErrGlobPath) {
		t.Errorf("RemoteSet glob: %v", err)
	}
	if _, err := oio.RemoteGetList[thing](c, false, "127.0.0.1:1", "things", nil); !errors.Is(err, oio.ErrNotListPath) {
		t.Errorf("RemoteGetList single: %v", err)
	}
	if err := oio.RemotePush(c, false, "127.0.0.1:1", "things", thing{}, nil); !errors.Is(err, oio.ErrNotListPath) {
		t.Errorf("RemotePush single: %v", err)
	}
}

func TestRemotePushAndGetList(t *testing.T) {
	s := startServer(t, nil)
	c := httpClient()

	list, err := oio.RemoteGetList[thing](c, false, s.Address, "things/*", nil)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("empty list: got %#v, %v", list, err)
	}

	var indexes []string
	for i := 1; i <= 3; i++ {
		index, err := oio.RemotePushContext(context.Background(), c, false, s.Address, "things/*", thing{N: i}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if key.Decode(index) == 0 {
			t.Fatalf("index %q is not a server stamp", index)
		}
		indexes = append(indexes, index)
	}
	// The returned index is the one the server stored the item under.
	for i, index := range indexes {
		m, err := oio.Get[thing](s, "things/"+index)
		if err != nil || m.Data.N != i+1 {
			t.Fatalf("things/%s: got %+v, %v", index, m, err)
		}
	}
	remote, err := oio.RemoteGetList[thing](c, false, s.Address, "things/*", nil)
	if err != nil {
		t.Fatal(err)
	}
	local, err := oio.GetList[thing](s, "things/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(remote) != 3 || len(local) != 3 {
		t.Fatalf("remote %+v, local %+v", remote, local)
	}
	for i := range remote {
		if remote[i] != local[i] || remote[i].Index != indexes[i] {
			t.Fatalf("item %d: remote %+v, local %+v, pushed %s", i, remote[i], local[i], indexes[i])
		}
	}

	// RemotePush has upstream's shape: the error only. Its entry comes last.
	if err := oio.RemotePush(c, false, s.Address, "things/*", thing{N: 4}, nil); err != nil {
		t.Fatal(err)
	}
	if remote, err = oio.RemoteGetList[thing](c, false, s.Address, "things/*", nil); err != nil || len(remote) != 4 || remote[3].Data.N != 4 {
		t.Fatalf("after RemotePush: %+v, %v", remote, err)
	}
}

func TestRemoteDel(t *testing.T) {
	s := startServer(t, nil)
	c := httpClient()
	if err := oio.RemoteDel(c, false, s.Address, "box", nil); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting a missing key: err = %v, want ErrNotFound", err)
	}
	if err := oio.Set(s, "box", thing{N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := oio.RemoteDel(c, false, s.Address, "box", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := oio.Get[thing](s, "box"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after RemoteDel: err = %v, want ErrNotFound", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := oio.Push(s, "things/*", thing{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := oio.RemoteDel(c, false, s.Address, "things/*", nil); err != nil {
		t.Fatal(err)
	}
	if list, err := oio.GetList[thing](s, "things/*"); err != nil || len(list) != 0 {
		t.Fatalf("after glob RemoteDel: %+v, %v", list, err)
	}
}

func TestRemote_Header(t *testing.T) {
	s := startServer(t, func(s *ooo.Server) {
		s.Audit = func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer letmein" }
	})
	c := httpClient()
	var status *oio.StatusError
	err := oio.RemoteSet(c, false, s.Address, "box", thing{N: 1}, nil)
	if !errors.As(err, &status) || status.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the header: err = %v, want a 401 StatusError", err)
	}
	header := http.Header{"Authorization": {"Bearer letmein"}}
	if err := oio.RemoteSet(c, false, s.Address, "box", thing{N: 1}, header); err != nil {
		t.Fatalf("with the header: %v", err)
	}
	if m, err := oio.RemoteGet[thing](c, false, s.Address, "box", header); err != nil || m.Data.N != 1 {
		t.Fatalf("with the header: got %+v, %v", m, err)
	}
}

func TestRemote_ServerRefusal(t *testing.T) {
	s := startServer(t, nil)
	var status *oio.StatusError
	err := oio.RemoteSet(httpClient(), false, s.Address, "a:b", thing{}, nil)
	if !errors.As(err, &status) || status.StatusCode/100 != 4 || status.Message == "" {
		t.Fatalf("invalid key: err = %v, want a 4xx StatusError with the server's message", err)
	}
}

func TestRemote_Bounded(t *testing.T) {
	// A listener that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()

	t.Run("client timeout", func(t *testing.T) {
		c := &http.Client{Timeout: 100 * time.Millisecond}
		done := make(chan error, 1)
		go func() { _, err := oio.RemoteGet[thing](c, false, l.Addr().String(), "box", nil); done <- err }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a silent server must give an error")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("RemoteGet did not honour the client's timeout")
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := oio.RemoteGetContext[thing](ctx, &http.Client{}, false, l.Addr().String(), "box", nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
