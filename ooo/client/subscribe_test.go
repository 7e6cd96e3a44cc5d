package client_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/client"
	oio "github.com/benitogf/pivot/ooo/io"
	"github.com/benitogf/pivot/ooo/storage"
)

func TestSubscribe_Object(t *testing.T) {
	s := startServer(t, nil)
	r := subscribe[thing](t, s.Address, "box", nil)

	empty := r.next(t, "the missing key")
	if len(empty) != 1 || empty[0] != (client.Meta[thing]{}) {
		t.Fatalf("missing key: got %+v, want one zero Meta", empty)
	}

	mustSet(t, s, "box", 1)
	created := one(t, r.next(t, "the created key"))
	stored := mustGet(t, s, "box")
	if created != stored || created.Data.N != 1 || created.Created == 0 || created.Updated != 0 || created.Index != "box" {
		t.Fatalf("created: got %+v, server holds %+v", created, stored)
	}

	mustSet(t, s, "box", 2)
	updated := one(t, r.next(t, "the updated key"))
	stored = mustGet(t, s, "box")
	if updated != stored || updated.Data.N != 2 || updated.Created != created.Created || updated.Updated <= created.Created {
		t.Fatalf("updated: got %+v after %+v, server holds %+v", updated, created, stored)
	}

	if err := oio.Del(s, "box"); err != nil {
		t.Fatal(err)
	}
	if deleted := one(t, r.next(t, "the deleted key")); deleted != (client.Meta[thing]{}) {
		t.Fatalf("deleted: got %+v, want the zero Meta", deleted)
	}

	// One callback per write and no stray one in between: the next callback is the
	// next write.
	mustSet(t, s, "box", 3)
	if again := one(t, r.next(t, "the key written again")); again.Data.N != 3 {
		t.Fatalf("after delete and set: got %+v, want n 3 (a stray callback came first)", again)
	}
}

func TestSubscribe_List(t *testing.T) {
	s := startServer(t, nil)
	r := subscribe[thing](t, s.Address, "things/*", nil)

	if empty := r.next(t, "the empty list"); empty == nil || len(empty) != 0 {
		t.Fatalf("empty list: got %#v, want an empty non-nil slice", empty)
	}

	a := mustPush(t, s, "things/*", 1)
	expectList(t, s, r.next(t, "the first push"), "things/*", []int{1})
	b := mustPush(t, s, "things/*", 2)
	got := expectList(t, s, r.next(t, "the second push"), "things/*", []int{1, 2})
	if got[0].Index != a || got[1].Index != b {
		t.Fatalf("indexes: got %s, %s, pushed %s, %s", got[0].Index, got[1].Index, a, b)
	}

	mustSet(t, s, "things/"+a, 10)
	got = expectList(t, s, r.next(t, "the update"), "things/*", []int{10, 2})
	if got[0].Updated == 0 {
		t.Fatalf("update: Updated is 0 in %+v", got[0])
	}

	if err := oio.Del(s, "things/"+a); err != nil {
		t.Fatal(err)
	}
	expectList(t, s, r.next(t, "the delete"), "things/*", []int{2})

	if err := oio.Del(s, "things/*"); err != nil {
		t.Fatal(err)
	}
	if empty := r.next(t, "the glob delete"); empty == nil || len(empty) != 0 {
		t.Fatalf("after glob delete: got %#v, want an empty non-nil slice", empty)
	}

	mustPush(t, s, "things/*", 3)
	expectList(t, s, r.next(t, "a push after the glob delete"), "things/*", []int{3})
}

func TestSubscribe_MissingKeyOfNonObjectType(t *testing.T) {
	s := startServer(t, nil)
	r := subscribe[int](t, s.Address, "/count", nil) // a leading '/' is accepted
	if got := r.next(t, "the missing key"); len(got) != 1 || got[0] != (client.Meta[int]{}) {
		t.Fatalf("got %+v, want one zero Meta[int]", got)
	}
	if _, err := s.Storage.Set("count", []byte("7")); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t, "the stored number"); len(got) != 1 || got[0].Data != 7 {
		t.Fatalf("got %+v, want data 7", got)
	}
}

func TestSubscribe_SendsHeader(t *testing.T) {
	srv := startServerWith(t, nil, "127.0.0.1:0", func(s *ooo.Server) {
		s.Audit = func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer letmein" }
	})
	r := subscribe[thing](t, srv.Address, "box", http.Header{"Authorization": {"Bearer letmein"}})
	if got := r.next(t, "the authorized snapshot"); len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
}

func TestSubscribe_ReconnectsAfterServerRestart(t *testing.T) {
	db := &storage.BoltStorage{Path: t.TempDir()}
	first := startServer(t, db)
	address := first.Address
	r := subscribe[thing](t, address, "box", nil)
	r.next(t, "the first snapshot")
	mustSet(t, first, "box", 1)
	if got := one(t, r.next(t, "the first write")); got.Data.N != 1 {
		t.Fatalf("got %+v", got)
	}

	first.Close(os.Interrupt)

	// While the server is down, a listener at its address drops every connection at
	// once: each dial fails, and the subscriber must keep trying.
	l, attempts := droppingListener(t, address)
	for i := 0; i < 3; i++ {
		select {
		case <-attempts:
		case <-time.After(waitFor):
			t.Fatalf("the subscriber made %d connection attempts while the server was down, want 3", i)
		}
	}
	l.Close()
	select {
	case state := <-r.states:
		t.Fatalf("a callback while the server was down: %+v", state)
	default:
	}

	second := startServerAt(t, db, address)
	// Nothing was written while the server was down, so the next callback is the
	// snapshot the new connection starts with.
	if got := one(t, r.next(t, "the snapshot after reconnecting")); got.Data.N != 1 {
		t.Fatalf("after reconnect: got %+v, want n 1", got)
	}
	mustSet(t, second, "box", 2)
	if got := one(t, r.next(t, "a write after reconnecting")); got.Data.N != 2 {
		t.Fatalf("after reconnect: got %+v, want n 2", got)
	}
}

func TestSubscribe_ContextCancelEndsIt(t *testing.T) {
	t.Run("while connected", func(t *testing.T) {
		s := startServer(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		states := make(chan struct{}, 10)
		done := make(chan struct{})
		go func() {
			defer close(done)
			client.Subscribe(ctx, "ws", s.Address, "box", nil, func([]client.Meta[thing]) { states <- struct{}{} })
		}()
		select {
		case <-states:
		case <-time.After(waitFor):
			t.Fatal("no first callback")
		}
		cancel()
		waitDone(t, done)
	})
	t.Run("while waiting to reconnect", func(t *testing.T) {
		l, attempts := droppingListener(t, "127.0.0.1:0")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			client.Subscribe(ctx, "ws", l.Addr().String(), "box", nil, func([]client.Meta[thing]) {
				t.Error("callback without a server")
			})
		}()
		select {
		case <-attempts: // a dial failed: Subscribe is now waiting to retry
		case <-time.After(waitFor):
			t.Fatal("no connection attempt")
		}
		cancel()
		waitDone(t, done)
	})
}

func TestSubscribeMultiple2(t *testing.T) {
	s := startServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type call struct {
		box    client.MultiState[thing]
		things client.MultiState[thing]
	}
	calls := make(chan call, 20)
	client.SubscribeMultiple2(ctx,
		client.Path{Protocol: "ws", Host: s.Address, Path: "box"},
		client.Path{Protocol: "ws", Host: s.Address, Path: "things/*"},
		func(box, things client.MultiState[thing]) { calls <- call{box, things} })
	nextCall := func(what string) call {
		t.Helper()
		select {
		case c := <-calls:
			return c
		case <-time.After(waitFor):
			t.Fatalf("no combined callback for %s", what)
			return call{}
		}
	}

	// The two first snapshots arrive in either order.
	seenBox, seenThings := false, false
	for i := 0; i < 2; i++ {
		c := nextCall("the first snapshots")
		if c.box.Updated == c.things.Updated {
			t.Fatalf("exactly one state must be marked updated: %+v", c)
		}
		seenBox = seenBox || c.box.Updated
		seenThings = seenThings || c.things.Updated
	}
	if !seenBox || !seenThings {
		t.Fatal("both subscriptions must report their snapshot")
	}

	mustPush(t, s, "things/*", 5)
	c := nextCall("the push")
	if !c.things.Updated || c.box.Updated || len(c.things.Data) != 1 || c.things.Data[0].Data.N != 5 || len(c.box.Data) != 1 {
		t.Fatalf("after push: %+v", c)
	}
	mustSet(t, s, "box", 6)
	c = nextCall("the set")
	if !c.box.Updated || c.things.Updated || c.box.Data[0].Data.N != 6 || len(c.things.Data) != 1 {
		t.Fatalf("after set: %+v", c)
	}
}

func TestSubscribeMultiple4(t *testing.T) {
	s := startServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	paths := []string{"k1", "k2", "k3", "k4"}
	p := func(i int) client.Path { return client.Path{Protocol: "ws", Host: s.Address, Path: paths[i]} }
	calls := make(chan [4]client.MultiState[thing], 20)
	client.SubscribeMultiple4(ctx, p(0), p(1), p(2), p(3),
		func(a, b, c, d client.MultiState[thing]) { calls <- [4]client.MultiState[thing]{a, b, c, d} })
	nextCall := func(what string) [4]client.MultiState[thing] {
		t.Helper()
		select {
		case c := <-calls:
			return c
		case <-time.After(waitFor):
			t.Fatalf("no combined callback for %s", what)
			return [4]client.MultiState[thing]{}
		}
	}
	updated := func(c [4]client.MultiState[thing]) []int {
		var u []int
		for i, st := range c {
			if st.Updated {
				u = append(u, i)
			}
		}
		return u
	}
	snapshots := map[int]bool{}
	for i := 0; i < 4; i++ {
		c := nextCall("the first snapshots")
		u := updated(c)
		if len(u) != 1 {
			t.Fatalf("want exactly one updated state, got %v", u)
		}
		snapshots[u[0]] = true
	}
	if len(snapshots) != 4 {
		t.Fatalf("snapshots from %v, want all four", snapshots)
	}
	for i := range paths {
		mustSet(t, s, paths[i], i+10)
		c := nextCall("a write to " + paths[i])
		if u := updated(c); len(u) != 1 || u[0] != i || c[i].Data[0].Data.N != i+10 {
			t.Fatalf("after writing %s: updated %v, states %+v", paths[i], u, c)
		}
		for j := 0; j < i; j++ {
			if c[j].Data[0].Data.N != j+10 {
				t.Fatalf("state %d lost its latest value: %+v", j, c[j])
			}
		}
	}
}

// droppingListener listens on address and closes every connection at once, so each
// websocket dial to it fails; attempts receives one value per connection.
func droppingListener(t testing.TB, address string) (net.Listener, <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", address)
	if err != nil {
		t.Fatalf("listen on %s: %v", address, err)
	}
	t.Cleanup(func() { l.Close() })
	attempts := make(chan struct{}, 100)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
			select {
			case attempts <- struct{}{}:
			default:
			}
		}
	}()
	return l, attempts
}

func waitDone(t testing.TB, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Subscribe did not return after its context was cancelled")
	}
}

func one(t testing.TB, state []client.Meta[thing]) client.Meta[thing] {
	t.Helper()
	if len(state) != 1 {
		t.Fatalf("want one entry, got %+v", state)
	}
	return state[0]
}

func mustSet(t testing.TB, s *ooo.Server, path string, n int) {
	t.Helper()
	if err := oio.Set(s, path, thing{N: n}); err != nil {
		t.Fatal(err)
	}
}

func mustPush(t testing.TB, s *ooo.Server, path string, n int) string {
	t.Helper()
	index, err := oio.Push(s, path, thing{N: n})
	if err != nil {
		t.Fatal(err)
	}
	return index
}

func mustGet(t testing.TB, s *ooo.Server, path string) client.Meta[thing] {
	t.Helper()
	m, err := oio.Get[thing](s, path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// expectList checks a list callback against the values wanted and the server's list.
func expectList(t testing.TB, s *ooo.Server, got []client.Meta[thing], glob string, want []int) []client.Meta[thing] {
	t.Helper()
	stored, err := oio.GetList[thing](s, glob)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(stored) != len(want) {
		t.Fatalf("got %+v, server holds %+v, want values %v", got, stored, want)
	}
	for i := range want {
		if got[i].Data.N != want[i] || got[i] != stored[i] {
			t.Fatalf("item %d: got %+v, server holds %+v, want value %d", i, got[i], stored[i], want[i])
		}
	}
	return got
}
