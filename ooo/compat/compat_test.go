package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/client"
	oio "github.com/benitogf/pivot/ooo/io"
	"github.com/benitogf/pivot/ooo/meta"
)

// runMainEnv makes the test binary run the program's main instead of the tests, so a
// test can start the program as its own process (see TestProgram_WaitClose).
const runMainEnv = "OOO_COMPAT_RUN_MAIN"

// waitFor bounds every wait on the server, a subscriber or the program.
const waitFor = 10 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Args = []string{os.Args[0], "-addr", "localhost:0", "-token", "process"}
		main()
		return
	}
	os.Exit(m.Run())
}

// startLibrary starts the program's server on a loopback port, on a MemoryStorage, as
// an upstream test would: Start blocks until it listens and Address then holds the
// bound address. configure may change the server's fields before it starts.
func startLibrary(t *testing.T, configure ...func(*ooo.Server)) *library {
	t.Helper()
	l := newLibrary("secret", &ooo.MemoryStorage{})
	for _, c := range configure {
		c(l.server)
	}
	l.server.Start("localhost:0")
	if !l.server.Active() {
		t.Fatal("the server did not start")
	}
	t.Cleanup(func() { l.server.Close(os.Interrupt) })
	return l
}

// request sends one HTTP request to the server, with the bearer token when authorised.
func request(t *testing.T, l *library, authorised bool, method, path, body string) (int, []byte) {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+l.server.Address+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	if authorised {
		req.Header = l.header()
	}
	client := &http.Client{Timeout: waitFor}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the body: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// gone reports whether a GET answer says the key is missing: 404, or the 200 and empty
// object upstream answers for a missing key behind a read filter.
func gone(status int, body []byte) bool {
	if status == http.StatusNotFound {
		return true
	}
	o, err := meta.Decode(body)
	return status == http.StatusOK && err == nil && o.Created == 0 && o.Index == ""
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServer_FiltersAndAudit(t *testing.T) {
	l := startLibrary(t)

	// Audit gates every route; an authorised key list of an empty storage is [].
	if status, _ := request(t, l, false, http.MethodGet, "/", ""); status != http.StatusUnauthorized {
		t.Fatalf("GET / without the token: %d, want 401", status)
	}
	if status, _ := request(t, l, false, http.MethodPost, "/books/*", `{"title":"x"}`); status != http.StatusUnauthorized {
		t.Fatalf("POST without the token: %d, want 401", status)
	}
	status, body := request(t, l, true, http.MethodGet, "/", "")
	var keys struct {
		Keys []string `json:"keys"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &keys) != nil || keys.Keys == nil || len(keys.Keys) != 0 {
		t.Fatalf("GET /: %d %s, want 200 {\"keys\":[]}", status, body)
	}

	// The write filter refuses a book without a title with its error's text.
	status, body = request(t, l, true, http.MethodPost, "/books/*", `{"author":"nobody"}`)
	if status != http.StatusBadRequest || !strings.Contains(string(body), errNoTitle.Error()) {
		t.Fatalf("POST a book without a title: %d %s, want 400 %q", status, body, errNoTitle)
	}

	// A push answers the generated index; AfterWrite has run by the time it answers.
	push := func(body string) string {
		t.Helper()
		status, reply := request(t, l, true, http.MethodPost, "/books/*", body)
		var out struct {
			Index string `json:"index"`
		}
		if status != http.StatusOK || json.Unmarshal(reply, &out) != nil || out.Index == "" {
			t.Fatalf("POST /books/* %s: %d %s", body, status, reply)
		}
		if !l.written.has("books/" + out.Index) {
			t.Fatalf("AfterWrite was not called with books/%s before the reply", out.Index)
		}
		return out.Index
	}
	dune := push(`{"title":"Dune","author":"Herbert"}`)
	draft := push(`{"title":"Unfinished","draft":true}`)
	if status, body = request(t, l, true, http.MethodPut, "/"+keptBook, `{"title":"Kept"}`); status != http.StatusOK {
		t.Fatalf("PUT /%s: %d %s", keptBook, status, body)
	}
	if !l.written.has(keptBook) {
		t.Fatalf("AfterWrite was not called with %s", keptBook)
	}

	// The read filter leaves drafts out of the list, which is sorted by created; a
	// single draft is still served.
	status, body = request(t, l, true, http.MethodGet, "/books/*", "")
	list, err := meta.DecodeList(body)
	if status != http.StatusOK || err != nil {
		t.Fatalf("GET /books/*: %d %s (%v)", status, body, err)
	}
	if len(list) != 2 || list[0].Index != dune || list[1].Index != "kept" {
		t.Fatalf("GET /books/* = %s, want %s then kept, without the draft", body, dune)
	}
	status, body = request(t, l, true, http.MethodGet, "/books/"+draft, "")
	if status != http.StatusOK {
		t.Fatalf("GET /books/%s: %d %s", draft, status, body)
	}
	if o, err := meta.Decode(body); err != nil || o.Index != draft || o.Path != "books/"+draft || o.Created == 0 {
		t.Fatalf("GET /books/%s = %s (%v)", draft, body, err)
	}

	// PATCH merges into the stored data. The write filter sees the patch body, not the
	// merge, so the patch carries the title too. (Upstream answers the full key as the index
	// and ours the last segment, README: "PATCH: missing key 404, ...", so the reply's
	// index is not checked here.)
	if status, body = request(t, l, true, http.MethodPatch, "/"+keptBook, `{"title":"Kept","author":"Someone"}`); status != http.StatusOK {
		t.Fatalf("PATCH /%s: %d %s", keptBook, status, body)
	}
	_, body = request(t, l, true, http.MethodGet, "/"+keptBook, "")
	var kept meta.Object
	var book Book
	if err := json.Unmarshal(body, &kept); err != nil || json.Unmarshal(kept.Data, &book) != nil || book != (Book{Title: "Kept", Author: "Someone"}) {
		t.Fatalf("GET /%s after the PATCH = %s", keptBook, body)
	}
	if kept.Updated == 0 || kept.Updated < kept.Created {
		t.Fatalf("GET /%s after the PATCH: created %d, updated %d", keptBook, kept.Created, kept.Updated)
	}

	// The delete filter keeps books/kept; another book deletes with 204, then 404.
	status, body = request(t, l, true, http.MethodDelete, "/"+keptBook, "")
	if status != http.StatusBadRequest || !strings.Contains(string(body), errKept.Error()) {
		t.Fatalf("DELETE /%s: %d %s, want 400 %q", keptBook, status, body, errKept)
	}
	if status, body = request(t, l, true, http.MethodDelete, "/books/"+dune, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE /books/%s: %d %s, want 204", dune, status, body)
	}
	// A deleted key behind a read filter: upstream answers 200 and an empty object,
	// ours 404 (README: "With a read filter, a missing key answers 404 like without
	// one"), so either is taken as gone.
	if status, body = request(t, l, true, http.MethodGet, "/books/"+dune, ""); !gone(status, body) {
		t.Fatalf("GET /books/%s after its delete: %d %s, want it gone", dune, status, body)
	}

	// Static mode refuses keys no filter covers, for reads and writes.
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		if status, body = request(t, l, true, method, "/other/thing", `{"a":1}`); status != http.StatusBadRequest {
			t.Fatalf("%s /other/thing in static mode: %d %s, want 400", method, status, body)
		}
	}

	// OnStorageEvent sees every write and delete, after its broadcast.
	for _, ev := range []string{"set books/" + dune, "set books/" + draft, "set " + keptBook, "del books/" + dune} {
		eventually(t, "the storage event "+ev, func() bool { return l.events.has(ev) })
	}
}

func TestIO_Local(t *testing.T) {
	l := startLibrary(t)
	s := l.server

	if err := oio.Set(s, "notes/first", Note{Text: "hello"}); err != nil {
		t.Fatalf("Set(notes/first): %v", err)
	}
	first, err := oio.Get[Note](s, "notes/first")
	if err != nil || first.Data.Text != "hello" || first.Index != "first" || first.Created == 0 {
		t.Fatalf("Get(notes/first) = %+v, %v", first, err)
	}
	if !l.reads.has("notes/first") {
		t.Fatal("BeforeRead was not called for Get(notes/first)")
	}
	index, err := oio.Push(s, "notes/*", Note{Text: "pushed"})
	if err != nil || index == "" {
		t.Fatalf("Push(notes/*) = %q, %v", index, err)
	}
	pushed, err := oio.Get[Note](s, "notes/"+index)
	if err != nil || pushed.Data.Text != "pushed" || pushed.Index != index {
		t.Fatalf("Get(notes/%s) = %+v, %v", index, pushed, err)
	}
	list, err := oio.GetList[Note](s, "notes/*")
	if err != nil || len(list) != 2 || list[0].Data.Text != "hello" || list[1].Data.Text != "pushed" {
		t.Fatalf("GetList(notes/*) = %+v, %v", list, err)
	}

	// The helpers bypass the filters: a book without a title is stored.
	if err := oio.Set(s, "books/untitled", Book{Author: "anonymous"}); err != nil {
		t.Fatalf("Set(books/untitled) bypassing the write filter: %v", err)
	}

	// Lists and single keys are not interchangeable, and a missing key is the storage's
	// ErrNotFound.
	if _, err := oio.Get[Note](s, "notes/*"); err == nil {
		t.Fatal("Get of a list path succeeded")
	}
	if _, err := oio.GetList[Note](s, "notes/first"); err == nil {
		t.Fatal("GetList of a single key succeeded")
	}
	if err := oio.Set(s, "notes/*", Note{Text: "x"}); err == nil {
		t.Fatal("Set of a list path succeeded")
	}
	if _, err := oio.Push(s, "notes/first", Note{Text: "x"}); err == nil {
		t.Fatal("Push to a single key succeeded")
	}
	if _, err := oio.Get[Note](s, "notes/missing"); !errors.Is(err, ooo.ErrNotFound) {
		t.Fatalf("Get(notes/missing) = %v, want ErrNotFound", err)
	}

	// Upstream has no io delete helper: a program deletes through the storage.
	if err := s.Storage.Del("notes/first"); err != nil {
		t.Fatalf("Storage.Del(notes/first): %v", err)
	}
	if _, err := oio.Get[Note](s, "notes/first"); !errors.Is(err, ooo.ErrNotFound) {
		t.Fatalf("Get(notes/first) after its delete = %v, want ErrNotFound", err)
	}
	eventually(t, "the delete's storage event", func() bool { return l.events.has("del notes/first") })
}

func TestIO_Remote(t *testing.T) {
	l := startLibrary(t)
	c := &http.Client{Timeout: waitFor}
	host := l.server.Address

	if err := oio.RemoteSet(c, false, host, "books/remote", Book{Title: "Remote"}, l.header()); err != nil {
		t.Fatalf("RemoteSet(books/remote): %v", err)
	}
	got, err := oio.RemoteGet[Book](c, false, host, "books/remote", l.header())
	if err != nil || got.Data.Title != "Remote" || got.Index != "remote" {
		t.Fatalf("RemoteGet(books/remote) = %+v, %v", got, err)
	}

	// Remote writes go through the filters and Audit: a non-200 answer is an error.
	if err := oio.RemoteSet(c, false, host, "books/untitled", Book{Author: "anonymous"}, l.header()); err == nil {
		t.Fatal("RemoteSet of a book without a title succeeded")
	}
	if err := oio.RemoteSet(c, false, host, "books/anonymous", Book{Title: "x"}, nil); err == nil {
		t.Fatal("RemoteSet without the token succeeded")
	}
	if _, err := oio.RemoteGet[Book](c, false, host, "books/remote", http.Header{}); err == nil {
		t.Fatal("RemoteGet without the token succeeded")
	}

	if err := oio.RemotePush(c, false, host, "books/*", Book{Title: "Pushed"}, l.header()); err != nil {
		t.Fatalf("RemotePush(books/*): %v", err)
	}
	if err := oio.RemoteSet(c, false, host, "books/draft", Book{Title: "Draft", Draft: true}, l.header()); err != nil {
		t.Fatalf("RemoteSet(books/draft): %v", err)
	}
	list, err := oio.RemoteGetList[Book](c, false, host, "books/*", l.header())
	if err != nil || len(list) != 2 || list[0].Data.Title != "Remote" || list[1].Data.Title != "Pushed" {
		t.Fatalf("RemoteGetList(books/*) = %+v, %v; want Remote then Pushed, the draft filtered out", list, err)
	}
	empty, err := oio.RemoteGetList[Note](c, false, host, "notes/*", l.header())
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("RemoteGetList(notes/*) = %#v, %v; want an empty, non-nil slice", empty, err)
	}

	if err := l.server.Storage.Del("books/remote"); err != nil {
		t.Fatalf("Storage.Del(books/remote): %v", err)
	}
	// Behind a read filter, upstream answers a deleted key with 200 and an empty object
	// (so its RemoteGet succeeds with created 0); ours answers 404, an error (README:
	// "With a read filter, a missing key answers 404 like without one").
	if got, err := oio.RemoteGet[Book](c, false, host, "books/remote", l.header()); err == nil && got.Created != 0 {
		t.Fatalf("RemoteGet of a deleted key = %+v", got)
	}
}

// states collects what a subscription's callback was given, so a test can wait for a
// state the server must reach.
type states[T any] struct {
	ch chan []client.Meta[T]
}

func newStates[T any]() *states[T] { return &states[T]{ch: make(chan []client.Meta[T], 256)} }

// callback is the subscription's OnMessageCallback; it keeps a copy of each state.
func (s *states[T]) callback(items []client.Meta[T]) {
	var kept []client.Meta[T] // nil stays nil, so the test sees what it was given
	if items != nil {
		kept = make([]client.Meta[T], len(items))
		copy(kept, items)
	}
	s.ch <- kept
}

// waitUntil takes states until one satisfies cond, within the deadline.
func (s *states[T]) waitUntil(t *testing.T, what string, cond func([]client.Meta[T]) bool) []client.Meta[T] {
	t.Helper()
	timeout := time.NewTimer(waitFor)
	defer timeout.Stop()
	for {
		select {
		case items := <-s.ch:
			if cond(items) {
				return items
			}
		case <-timeout.C:
			t.Fatalf("timed out waiting for the subscriber to see %s", what)
		}
	}
}

func titles(items []client.Meta[Book]) string {
	var b strings.Builder
	for i, item := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(item.Data.Title)
	}
	return b.String()
}

func TestClient_Subscribe(t *testing.T) {
	l := startLibrary(t)
	s := l.server
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Subscribe blocks until ctx ends, so it runs on its own goroutine.
	books, notes := newStates[Book](), newStates[Note]()
	done := make(chan struct{}, 2)
	go func() {
		client.Subscribe(ctx, "ws", s.Address, "books/*", l.header(), books.callback)
		done <- struct{}{}
	}()
	go func() {
		client.Subscribe(ctx, "ws", s.Address, "notes/solo", l.header(), notes.callback)
		done <- struct{}{}
	}()

	// The first message: an empty, non-nil list; a missing key as one empty item.
	books.waitUntil(t, "an empty list", func(items []client.Meta[Book]) bool { return items != nil && len(items) == 0 })
	notes.waitUntil(t, "the missing key", func(items []client.Meta[Note]) bool {
		return len(items) == 1 && items[0].Created == 0 && items[0].Index == "" && items[0].Data == Note{}
	})

	// Live updates: writes over REST, over io and through the storage all reach the
	// subscribers, filtered by the read filter like a GET.
	c := &http.Client{Timeout: waitFor}
	if err := oio.RemoteSet(c, false, s.Address, "books/live", Book{Title: "Live"}, l.header()); err != nil {
		t.Fatal(err)
	}
	books.waitUntil(t, "Live", func(items []client.Meta[Book]) bool { return titles(items) == "Live" })
	if err := oio.Set(s, "books/draft", Book{Title: "Draft", Draft: true}); err != nil {
		t.Fatal(err)
	}
	if err := oio.Set(s, "books/live", Book{Title: "Live 2"}); err != nil {
		t.Fatal(err)
	}
	got := books.waitUntil(t, "Live 2", func(items []client.Meta[Book]) bool { return strings.Contains(titles(items), "Live 2") })
	if titles(got) != "Live 2" || got[0].Index != "live" || got[0].Updated == 0 {
		t.Fatalf("the subscriber holds %+v, want only Live 2, updated (the draft filtered out)", got)
	}
	if _, err := oio.Push(s, "books/*", Book{Title: "Pushed"}); err != nil {
		t.Fatal(err)
	}
	books.waitUntil(t, "Live 2,Pushed", func(items []client.Meta[Book]) bool { return titles(items) == "Live 2,Pushed" })
	if err := s.Storage.Del("books/live"); err != nil {
		t.Fatal(err)
	}
	books.waitUntil(t, "the delete", func(items []client.Meta[Book]) bool { return titles(items) == "Pushed" })

	if err := oio.Set(s, "notes/solo", Note{Text: "here"}); err != nil {
		t.Fatal(err)
	}
	notes.waitUntil(t, "the note", func(items []client.Meta[Note]) bool {
		return len(items) == 1 && items[0].Data.Text == "here" && items[0].Index == "solo" && items[0].Created != 0
	})

	// SubscribeMultiple2 follows two paths and tells which one changed.
	type pair struct {
		books client.MultiState[Book]
		notes client.MultiState[Note]
	}
	pairs := make(chan pair, 256)
	client.SubscribeMultiple2(ctx,
		client.Path{Protocol: "ws", Host: s.Address, Path: "books/*", Header: l.header()},
		client.Path{Protocol: "ws", Host: s.Address, Path: "notes/*", Header: l.header()},
		func(b client.MultiState[Book], n client.MultiState[Note]) { pairs <- pair{b, n} })
	waitPair := func(what string, cond func(pair) bool) {
		t.Helper()
		timeout := time.NewTimer(waitFor)
		defer timeout.Stop()
		for {
			select {
			case p := <-pairs:
				if cond(p) {
					return
				}
			case <-timeout.C:
				t.Fatalf("timed out waiting for SubscribeMultiple2 to see %s", what)
			}
		}
	}
	waitPair("both paths", func(p pair) bool { return titles(p.books.Data) == "Pushed" && len(p.notes.Data) == 1 })
	if _, err := oio.Push(s, "notes/*", Note{Text: "second"}); err != nil {
		t.Fatal(err)
	}
	waitPair("the second note", func(p pair) bool {
		return len(p.notes.Data) == 2 && p.notes.Updated && !p.books.Updated && titles(p.books.Data) == "Pushed"
	})

	// Cancelling the context ends the subscriptions.
	cancel()
	for range 2 {
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Fatal("Subscribe did not return after its context was cancelled")
		}
	}
}

func TestStorage_Helpers(t *testing.T) {
	db := &journalStorage{}
	server := &ooo.Server{Silence: true, Storage: db}
	server.Start("localhost:0")
	if !server.Active() {
		t.Fatal("the server did not start on the journal storage")
	}
	defer server.Close(os.Interrupt)

	ooo.StorageObjectTest(server, t)
	ooo.StorageListTest(server, t)
	ooo.StorageGetNTest(server, t, 10)
	ooo.StorageKeysRangeTest(server, t, 10)

	// The server wrote through the journal storage, REST writes included.
	if _, err := server.Storage.Set("journal/check", json.RawMessage(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, entry := range db.entries() {
		found = found || entry == "set journal/check"
	}
	if !found || len(db.entries()) < 10 {
		t.Fatalf("the journal holds %v", db.entries())
	}
	raw, err := server.Storage.Get("journal/check")
	if err != nil || !bytes.Contains(raw, []byte(`"ok":true`)) {
		t.Fatalf("Get(journal/check) = %s, %v", raw, err)
	}
}

func TestServer_RoutesAndEvents(t *testing.T) {
	l := startLibrary(t)
	s := l.server

	// A route on Router before Start wins over the key routes, and Audit does not
	// gate it.
	status, body := request(t, l, false, http.MethodGet, "/"+featured, "")
	var book Book
	if status != http.StatusOK || json.Unmarshal(body, &book) != nil || book != featuredBook {
		t.Fatalf("GET /%s: %d %s, want the program's own route", featured, status, body)
	}

	// NoBroadcastKeys: a write under cache/* is stored but raises no event. A write
	// made after it does; by the time its event is seen, the first write's would have
	// been too.
	if err := oio.Set(s, "cache/page", Note{Text: "cached"}); err != nil {
		t.Fatal(err)
	}
	if err := oio.Set(s, "notes/after", Note{Text: "after"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the event of notes/after", func() bool { return l.events.has("set notes/after") })
	if l.events.has("set cache/page") {
		t.Fatal("a write under NoBroadcastKeys raised a storage event")
	}
	if cached, err := oio.Get[Note](s, "cache/page"); err != nil || cached.Data.Text != "cached" {
		t.Fatalf("Get(cache/page) = %+v, %v", cached, err)
	}

	// The key list decodes into ooo.Stats, sorted.
	status, body = request(t, l, true, http.MethodGet, "/", "")
	var stats ooo.Stats
	if status != http.StatusOK || json.Unmarshal(body, &stats) != nil || strings.Join(stats.Keys, ",") != "cache/page,notes/after" {
		t.Fatalf("GET /: %d %s", status, body)
	}
}
