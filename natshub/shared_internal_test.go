package natshub

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

// started makes and starts a Storage and closes it when the test ends.
func started(t testing.TB, s *Storage) *Storage {
	t.Helper()
	if err := s.Start(storage.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// waitEvent waits for an event on key k with operation op, skipping others.
func waitEvent(t testing.TB, ch storage.EventChan, k, op string) storage.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event channel closed")
			}
			if ev.Key == k && ev.Operation == op {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event for %q", op, k)
		}
	}
}

// TestStorage_SharedBucket: two processes on one bucket see each other's writes in
// reads, in the feed and as events (with the object), and keep their own identities.
func TestStorage_SharedBucket(t *testing.T) {
	ns := startServer(t)
	_, js1 := connect(t, ns.ClientURL())
	_, js2 := connect(t, ns.ClientURL())
	a := started(t, newStorage(t, js1, Config{Bucket: "shared", Process: "a"}))
	b := started(t, newStorage(t, js2, Config{Bucket: "shared", Process: "b"}))
	if a.Epoch() != b.Epoch() || a.Epoch() == "" {
		t.Fatalf("epochs %q and %q", a.Epoch(), b.Epoch())
	}
	ta, ia := a.Identity()
	tb, ib := b.Identity()
	if ta == tb {
		t.Fatalf("two processes share the token %q (instances %d, %d)", ta, ia, ib)
	}
	if _, err := a.Set("users/1", json.RawMessage(`{"name":"a"}`)); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, b.Watch(), "users/1", storage.OpSet)
	if ev.Object == nil || string(ev.Object.Data) != `{"name":"a"}` {
		t.Fatalf("b's event %+v", ev)
	}
	raw, err := b.Get("users/1")
	if err != nil || string(raw) != string(meta.New(ev.Object)) {
		t.Fatalf("b reads %s %v", raw, err)
	}
	if err := b.Del("users/*"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a.Watch(), "users/*", storage.OpDel)
	if _, err := a.Get("users/1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a reads a deleted key: %v", err)
	}
	if c, _, err := a.Changes("users/*", 0, 10); err != nil || len(c) != 1 || !c[0].Deleted {
		t.Fatalf("a's feed %+v %v", c, err)
	}
	// Cursors are shared: pivot's writer registry must be one for the whole hub.
	if err := a.SaveCursor("pivot/writers", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if v, err := b.LoadCursor("pivot/writers"); err != nil || string(v) != `{}` {
		t.Fatalf("b loads %q %v", v, err)
	}
	// A Clear by one process gives the other the new epoch.
	a.Clear()
	deadline := time.Now().Add(10 * time.Second)
	for b.Epoch() != a.Epoch() && time.Now().Before(deadline) {
		if _, _, err := b.Changes("", 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	if b.Epoch() != a.Epoch() {
		t.Fatalf("b kept epoch %q after a's Clear to %q", b.Epoch(), a.Epoch())
	}
}

// TestStorage_SharedWritesNeverLost: two processes writing the same keys at once, by
// Set and by Apply under pivot's LWW, never lose a write that should win: every key
// ends at the highest version either process wrote or applied.
func TestStorage_SharedWritesNeverLost(t *testing.T) {
	ns := startServer(t)
	_, js1 := connect(t, ns.ClientURL())
	_, js2 := connect(t, ns.ClientURL())
	procs := []*Storage{
		started(t, newStorage(t, js1, Config{Bucket: "race", Process: "a"})),
		started(t, newStorage(t, js2, Config{Bucket: "race", Process: "b"})),
	}
	const keys, rounds = 8, 25
	var (
		mu   sync.Mutex
		best = map[string]storage.Entry{}
	)
	note := func(en storage.Entry) {
		mu.Lock()
		defer mu.Unlock()
		if pivot.Wins(en, best[en.Key]) {
			best[en.Key] = en
		}
	}
	var wg sync.WaitGroup
	for p, s := range procs {
		wg.Add(2)
		go func() { // local writes
			defer wg.Done()
			for r := range rounds {
				k := fmt.Sprintf("k/%d", r%keys)
				if _, err := s.Set(k, json.RawMessage(fmt.Sprintf(`{"p":%d,"r":%d}`, p, r))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() { // remote entries, stamped by the process's clock
			defer wg.Done()
			for r := range rounds {
				batch := make([]storage.Entry, 0, keys)
				for k := range keys {
					batch = append(batch, storage.Entry{Key: fmt.Sprintf("k/%d", k), Created: s.Clock().Now(), Data: json.RawMessage(fmt.Sprintf(`{"remote":%d,"r":%d}`, p, r))})
				}
				for _, en := range batch {
					note(en)
				}
				if _, err := s.Apply(batch, pivot.Wins); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Every local write's stored state is in the feed at its latest: fold the feed's
	// final states with the applied entries and check that the feed holds the winner.
	final, _, err := procs[0].Changes("k/*", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(final) != keys {
		t.Fatalf("%d keys in the feed, want %d", len(final), keys)
	}
	for _, c := range final {
		want := best[c.Key]
		if pivot.Wins(want, c.Entry) {
			t.Errorf("key %s holds %s (version %d) though the applied %s (version %d) wins", c.Key, c.Data, c.Version(), want.Data, want.Version())
		}
	}
}

// TestStorage_BytesVerbatim: data is stored and read byte for byte, HTML and non-ASCII
// text included, and the message data is exactly the data (stamps are in headers).
func TestStorage_BytesVerbatim(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns.ClientURL())
	s := started(t, newStorage(t, js, Config{Bucket: "bytes"}))
	data := `{"h":"<b>&amp;</b>","t":"東京 ü \u2028","n":12345678901234567890}`
	en := storage.Entry{Key: "v/1", Created: s.Clock().Now(), Data: json.RawMessage(data)}
	if _, err := s.Apply([]storage.Entry{en}, pivot.Wins); err != nil {
		t.Fatal(err)
	}
	o := getObj(t, s, "v/1")
	if string(o.Data) != data {
		t.Fatalf("read %s, wrote %s", o.Data, data)
	}
	m, err := s.data.get(t.Context(), subjectKey("v/1"))
	if err != nil || string(m.Data) != data {
		t.Fatalf("message data %q %v", m.Data, err)
	}
}

func getObj(t testing.TB, s *Storage, k string) meta.Object {
	t.Helper()
	raw, err := s.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	o, err := meta.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestStorage_TooLarge: data that cannot travel in one message is refused with
// storage.ErrTooLarge, by local writes and by Apply (as a refused entry), with no limit
// set.
func TestStorage_TooLarge(t *testing.T) {
	ns := startServer(t)
	nc, js := connect(t, ns.ClientURL())
	s := started(t, newStorage(t, js, Config{Bucket: "big"}))
	if nc.MaxPayload() != 1<<20 {
		t.Fatalf("max_payload %d, want the 1 MiB default", nc.MaxPayload())
	}
	big := `"` + strings.Repeat("x", int(s.maxData())) + `"` // 2 bytes over
	if _, err := s.Set("big", json.RawMessage(big)); !errors.Is(err, storage.ErrTooLarge) || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("set: %v", err)
	}
	res, err := s.ApplyEach([]storage.Entry{{Key: "big", Created: 5, Data: json.RawMessage(big)}}, pivot.Wins)
	if err != nil || res[0].Outcome != storage.Refused || !errors.Is(res[0].Err, storage.ErrTooLarge) {
		t.Fatalf("apply: %+v %v", res, err)
	}
	fits := `"` + strings.Repeat("x", int(s.maxData())-2) + `"`
	if _, err := s.Set("fits", json.RawMessage(fits)); err != nil {
		t.Fatalf("data of the largest size: %v", err)
	}
}

// TestStorage_PartialGlob: a glob segment such as "us*" (no NATS equivalent) selects
// what ooo's matching selects, in reads and in the feed.
func TestStorage_PartialGlob(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns.ClientURL())
	s := started(t, newStorage(t, js, Config{Bucket: "glob"}))
	for _, k := range []string{"users/1", "us/2", "other/3", "users/1/deep", "u.s/4"} {
		if _, err := s.Set(k, json.RawMessage(`1`)); err != nil {
			t.Fatal(err)
		}
	}
	c, _, err := s.Changes("us*/*", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range c {
		got = append(got, ch.Key)
	}
	if strings.Join(got, ",") != "users/1,us/2" {
		t.Fatalf("changes of us*/*: %v", got)
	}
	list, err := s.GetN("u*/*", 10)
	if err != nil || len(list) != 3 {
		t.Fatalf("GetN u*/*: %v %v", list, err)
	}
	if c, _, _ := s.Changes("*", 0, 100); len(c) != 0 {
		t.Fatalf("* matches one-segment keys only (and no reserved key): %+v", c)
	}
}

// TestStorage_BucketRecreated: a bucket deleted and re-created restarts its sequences
// at 1; the storage then reports a new epoch, so cursors taken before are stale.
func TestStorage_BucketRecreated(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns.ClientURL())
	s := started(t, newStorage(t, js, Config{Bucket: "again"}))
	for i := range 5 {
		if _, err := s.Set(fmt.Sprintf("k/%d", i), json.RawMessage(`1`)); err != nil {
			t.Fatal(err)
		}
	}
	ep := s.Epoch()
	if err := js.DeleteStream(t.Context(), "KV_again"); err != nil {
		t.Fatal(err)
	}
	newStorage(t, js, Config{Bucket: "again"}) // re-creates the bucket, empty
	if _, err := s.Set("k/new", json.RawMessage(`2`)); err != nil {
		t.Fatal(err)
	}
	c, next, err := s.Changes("", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if s.Epoch() == ep || s.Epoch() == "" {
		t.Fatalf("epoch %q kept across a re-created bucket", ep)
	}
	if len(c) != 1 || c[0].Key != "k/new" || next > 3 {
		t.Fatalf("feed of the new bucket: %+v next %d", c, next)
	}
}

// TestStorage_ChangesReusedConsumers: Changes from many goroutines at once, from any
// sequence and with any limit, gives what the whole feed says, although consumers are
// reused (moved between sequences) across calls.
func TestStorage_ChangesReusedConsumers(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns.ClientURL())
	s := started(t, newStorage(t, js, Config{Bucket: "reuse"}))
	batch := make([]storage.Entry, 0, 300)
	for i := range 300 {
		batch = append(batch, storage.Entry{Key: fmt.Sprintf("r/%03d", i), Created: s.Clock().Now(), Data: json.RawMessage(`1`)})
	}
	if _, err := s.Apply(batch, pivot.Wins); err != nil {
		t.Fatal(err)
	}
	all, head, err := s.Changes("", 0, 1000)
	if err != nil || len(all) != 300 {
		t.Fatalf("%d changes %v", len(all), err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				since := all[(g*37+i*11)%len(all)].Seq - 1
				limit := 1 + (g*7+i*13)%150
				got, next, err := s.Changes("", since, limit)
				if err != nil {
					t.Error(err)
					return
				}
				var want []storage.Change
				for _, c := range all {
					if c.Seq > since && len(want) < limit {
						want = append(want, c)
					}
				}
				if len(got) != len(want) {
					t.Errorf("since %d limit %d: %d changes, want %d", since, limit, len(got), len(want))
					return
				}
				for j := range got {
					if got[j].Seq != want[j].Seq || got[j].Key != want[j].Key {
						t.Errorf("since %d limit %d: change %d is %s@%d, want %s@%d", since, limit, j, got[j].Key, got[j].Seq, want[j].Key, want[j].Seq)
						return
					}
				}
				if len(got) == limit && next != got[limit-1].Seq || len(got) < limit && next != head {
					t.Errorf("since %d limit %d: next %d", since, limit, next)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestStorage_ServersGone: with no server to answer, a write retries for RetryFor and
// then fails with an error wrapping ErrUnavailable; nothing hangs, and Close returns.
func TestStorage_ServersGone(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns.ClientURL())
	s := started(t, newStorage(t, js, Config{Bucket: "gone", RetryFor: time.Second, RequestTimeout: 300 * time.Millisecond}))
	if _, err := s.Set("a", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Changes("", 0, 10); err != nil { // leaves an idle consumer
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	start := time.Now()
	_, err := s.Set("a", json.RawMessage(`2`))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write with the servers gone: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the write gave up after %s, RetryFor is 1s", took)
	}
	res, err := s.ApplyEach([]storage.Entry{{Key: "b", Created: 5, Data: json.RawMessage(`1`)}}, pivot.Wins)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("apply with the servers gone: %+v %v", res, err)
	}
	start = time.Now()
	s.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %s with the servers gone", took)
	}
}

// Membership must stay a pivot.Membership: pivot's Config takes it as one.
var _ pivot.Membership = (*Membership)(nil)
