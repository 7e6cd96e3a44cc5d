package ooo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo/messages"
	"github.com/benitogf/pivot/ooo/meta"
)

// This file holds the websocket test helpers upstream ooo exports beside its storage
// helpers, for people who write their own Database: they check that writes made over
// REST reach a websocket subscriber of server.Address, and that the value a subscriber
// rebuilds from the frames (messages.PatchCache, as clients do) is the value a GET
// answers after every write. The first four take a started server,
//
//	server := &ooo.Server{Silence: true, Storage: myStorage}
//	server.Start("localhost:0")
//	defer server.Close(os.Interrupt)
//	ooo.StreamBroadcastTest(t, server)
//
// and the last three (StreamBroadcastFilterTest, StreamBroadcastForcePatchTest,
// StreamBroadcastNoPatchTest) configure and start the server they are given, which the
// caller closes:
//
//	server := &ooo.Server{Silence: true, Storage: myStorage}
//	defer server.Close(os.Interrupt)
//	ooo.StreamBroadcastNoPatchTest(t, server)
//
// Each one empties the storage first and uses the keys test and test/*. They check our
// behaviour where it differs from upstream's (ooo/README.md lists the differences): a
// broadcast that leaves the value unchanged sends nothing (upstream sends an empty "[]"
// patch), and a change may come as a snapshot when that is smaller, unless ForcePatch.
// Every wait for a frame is bounded (10 s) and none sleeps.

// StreamBroadcastTest subscribes to the key test and checks three writes over REST: a
// POST (the subscriber gets the object, index "test", data TEST_DATA), a second POST
// (same Created, a new Updated) and a DELETE (the empty object). Each write sends one
// message with a new version, and after each the subscriber holds what GET answers.
func StreamBroadcastTest(t *testing.T, server *Server) {
	t.Helper()
	server.Storage.Clear()
	sub := streamDial(t, server, "/test")
	defer sub.close()
	first := sub.next("the first message")
	sub.expectRead(server, "test", "the first message")
	if o := streamObject(t, sub.state, "the first message"); o.Created != 0 {
		t.Fatalf("the first message of a missing key holds %s, want the empty object", sub.state)
	}
	version := first.Version

	streamWrite(t, server, http.MethodPost, "test", TEST_DATA)
	version = streamNewVersion(t, sub.next("POST /test"), version, "POST /test")
	sub.expectRead(server, "test", "after POST /test")
	created := streamObject(t, sub.state, "after POST /test")
	if created.Index != "test" || created.Created == 0 || !sameJSON(created.Data, TEST_DATA) {
		t.Fatalf("after POST /test the subscriber holds %s, want index test and TEST_DATA", sub.state)
	}

	update := json.RawMessage(`{"name":"second","n":2}`)
	streamWrite(t, server, http.MethodPost, "test", update)
	version = streamNewVersion(t, sub.next("the second POST /test"), version, "the second POST /test")
	sub.expectRead(server, "test", "after the second POST /test")
	updated := streamObject(t, sub.state, "after the second POST /test")
	if updated.Created != created.Created || updated.Updated == 0 || !sameJSON(updated.Data, update) {
		t.Fatalf("after the second POST /test the subscriber holds %s, want created %d, an updated stamp and %s", sub.state, created.Created, update)
	}

	streamWrite(t, server, http.MethodDelete, "test", nil)
	streamNewVersion(t, sub.next("DELETE /test"), version, "DELETE /test")
	sub.expectRead(server, "test", "after DELETE /test")
	if o := streamObject(t, sub.state, "after DELETE /test"); o.Created != 0 || o.Index != "" {
		t.Fatalf("after DELETE /test the subscriber holds %s, want the empty object", sub.state)
	}
}

// StreamItemGlobBroadcastTest subscribes to the key test/1 and checks that a POST of it
// reaches the subscriber, a write of its sibling test/2 does not, and a DELETE of the
// glob test/* does (the empty object).
func StreamItemGlobBroadcastTest(t *testing.T, server *Server) {
	t.Helper()
	server.Storage.Clear()
	sub := streamDial(t, server, "/test/1")
	defer sub.close()
	sub.next("the first message")
	sub.expectRead(server, "test/1", "the first message")

	streamWrite(t, server, http.MethodPost, "test/1", TEST_DATA)
	sub.next("POST /test/1")
	sub.expectRead(server, "test/1", "after POST /test/1")
	if o := streamObject(t, sub.state, "after POST /test/1"); o.Index != "1" || !sameJSON(o.Data, TEST_DATA) {
		t.Fatalf("after POST /test/1 the subscriber holds %s, want index 1 and TEST_DATA", sub.state)
	}

	// test/2 is not test/1's: the next frame must be the glob delete's.
	streamWrite(t, server, http.MethodPost, "test/2", TEST_DATA)
	streamWrite(t, server, http.MethodDelete, "test/*", nil)
	sub.next("DELETE /test/* (after a write of test/2, which test/1's subscriber must not get)")
	sub.expectRead(server, "test/1", "after DELETE /test/*")
	if o := streamObject(t, sub.state, "after DELETE /test/*"); o.Created != 0 {
		t.Fatalf("after DELETE /test/* the subscriber of test/1 holds %s, want the empty object", sub.state)
	}
}

// StreamGlobBroadcastTest subscribes to the glob test/* and checks n POSTs to the glob
// (each adds its entry last, with TEST_DATA), three rounds of updates of every entry
// (each changes that entry only, in place) and a DELETE of the glob (the empty list).
// After every write the subscriber holds what GET answers. n must be positive.
func StreamGlobBroadcastTest(t *testing.T, server *Server, n int) {
	t.Helper()
	if n <= 0 {
		t.Fatalf("StreamGlobBroadcastTest: n = %d, want a positive count", n)
	}
	server.Storage.Clear()
	sub := streamDial(t, server, "/test/*")
	defer sub.close()
	sub.next("the first message")
	sub.expectRead(server, "test/*", "the first message")
	if list := streamList(t, sub.state, "the first message"); len(list) != 0 {
		t.Fatalf("the first message of an empty list holds %s, want []", sub.state)
	}

	indexes := make([]string, 0, n)
	for i := 0; i < n; i++ {
		what := fmt.Sprintf("POST /test/* number %d", i+1)
		index := streamWrite(t, server, http.MethodPost, "test/*", TEST_DATA)
		sub.next(what)
		sub.expectRead(server, "test/*", what)
		list := streamList(t, sub.state, what)
		if len(list) != i+1 || list[i].Index != index || !sameJSON(list[i].Data, TEST_DATA) {
			t.Fatalf("after %s (index %s) the subscriber holds %s, want %d entries, the new one last", what, index, sub.state, i+1)
		}
		indexes = append(indexes, index)
	}

	const rounds = 3
	for round := 1; round <= rounds; round++ {
		for i, index := range indexes {
			what := fmt.Sprintf("round %d, POST /test/%s", round, index)
			streamWrite(t, server, http.MethodPost, "test/"+index, json.RawMessage(`{"round":`+strconv.Itoa(round)+`}`))
			sub.next(what)
			sub.expectRead(server, "test/*", what)
			list := streamList(t, sub.state, what)
			if len(list) != n || list[i].Index != index || streamCounter(t, list[i], "round") != int64(round) {
				t.Fatalf("after %s the subscriber holds %s, want entry %d updated in place", what, sub.state, i)
			}
		}
	}

	streamWrite(t, server, http.MethodDelete, "test/*", nil)
	sub.next("DELETE /test/*")
	sub.expectRead(server, "test/*", "after DELETE /test/*")
	if list := streamList(t, sub.state, "after DELETE /test/*"); len(list) != 0 {
		t.Fatalf("after DELETE /test/* the subscriber holds %s, want []", sub.state)
	}
}

// StreamGlobBroadcastConcurretTest (upstream's spelling) subscribes to the glob test/*,
// stores n entries through server.Storage, then runs two writers per entry at once,
// each making six read-modify-writes of its own member under GetAndLock and
// SetAndUnlock. The subscriber must end with what GET answers, every update counted;
// GetAndLock and SetAndUnlock of a glob must fail with ErrGlobLock. n must be positive.
func StreamGlobBroadcastConcurretTest(t *testing.T, server *Server, n int) {
	t.Helper()
	if n <= 0 {
		t.Fatalf("StreamGlobBroadcastConcurretTest: n = %d, want a positive count", n)
	}
	db := server.Storage
	db.Clear()
	sub := streamDial(t, server, "/test/*")
	defer sub.close()
	sub.next("the first message")
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "test/" + strconv.Itoa(i)
		if _, err := db.Set(keys[i], json.RawMessage(`{"count":0,"other":0}`)); err != nil {
			t.Fatalf("Set(%s): %v", keys[i], err)
		}
	}
	sub.until(fmt.Sprintf("%d entries stored", n), func(state json.RawMessage) bool {
		list, err := meta.DecodeList(state)
		return err == nil && len(list) == n
	})
	sub.expectRead(server, "test/*", "the stored entries")

	const updates = 6
	var wg sync.WaitGroup
	failures := make(chan error, 2*n)
	for _, k := range keys {
		for _, member := range []string{"count", "other"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := streamIncrement(db, k, member, updates); err != nil {
					failures <- err
				}
			}()
		}
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	want := streamRead(t, server, "test/*")
	sub.until("every update", func(state json.RawMessage) bool { return sameJSON(state, want) })
	list := streamList(t, sub.state, "every update")
	if len(list) != n {
		t.Fatalf("after the updates the subscriber holds %d entries, want %d", len(list), n)
	}
	for _, o := range list {
		if c, other := streamCounter(t, o, "count"), streamCounter(t, o, "other"); c != updates || other != updates {
			t.Fatalf("entry %s counted %d and %d updates, want %d each (an update was lost)", o.Path, c, other, updates)
		}
	}
	if _, err := db.GetAndLock("test/*"); !errors.Is(err, ErrGlobLock) {
		t.Fatalf("GetAndLock(test/*) = %v, want ErrGlobLock", err)
	}
	if _, err := db.SetAndUnlock("test/*", TEST_DATA); !errors.Is(err, ErrGlobLock) {
		t.Fatalf("SetAndUnlock(test/*) = %v, want ErrGlobLock", err)
	}
}

// streamIncrement adds one to the integer member of k's data, times times, each under
// GetAndLock and SetAndUnlock.
func streamIncrement(db Database, k, member string, times int) error {
	for i := 0; i < times; i++ {
		raw, err := db.GetAndLock(k)
		if err != nil {
			return fmt.Errorf("GetAndLock(%s): %w", k, err)
		}
		o, err := meta.Decode(raw)
		if err != nil {
			_ = db.Unlock(k)
			return fmt.Errorf("GetAndLock(%s) = %s: %w", k, raw, err)
		}
		var data map[string]json.RawMessage
		if err := json.Unmarshal(o.Data, &data); err != nil {
			_ = db.Unlock(k)
			return fmt.Errorf("%s holds %s: %w", k, o.Data, err)
		}
		v, err := strconv.ParseInt(string(data[member]), 10, 64)
		if err != nil {
			_ = db.Unlock(k)
			return fmt.Errorf("%s holds %s: member %s: %w", k, o.Data, member, err)
		}
		data[member] = json.RawMessage(strconv.FormatInt(v+1, 10))
		next, err := json.Marshal(data)
		if err != nil {
			_ = db.Unlock(k)
			return fmt.Errorf("encode %s: %w", k, err)
		}
		if _, err := db.SetAndUnlock(k, next); err != nil {
			return fmt.Errorf("SetAndUnlock(%s): %w", k, err)
		}
	}
	return nil
}

// The read filter of StreamBroadcastFilterTest: every list of test/* reads as one of
// these two objects, the second once the list holds test/mark.
const (
	streamFiltered       = `{"extra":"what the read filter of test/* returns instead of the list, whatever the list holds","mark":false}`
	streamFilteredMarked = `{"extra":"what the read filter of test/* returns instead of the list, whatever the list holds","mark":true}`
)

// streamMarkFilter is the read filter of StreamBroadcastFilterTest.
func streamMarkFilter(_ string, data json.RawMessage) (json.RawMessage, error) {
	list, err := meta.DecodeList(data)
	if err != nil {
		return nil, fmt.Errorf("stream filter test: %w", err)
	}
	for _, o := range list {
		if o.Path == "test/mark" {
			return json.RawMessage(streamFilteredMarked), nil
		}
	}
	return json.RawMessage(streamFiltered), nil
}

// StreamBroadcastFilterTest registers a read filter on test/* that answers one object
// whatever the list holds, except once it holds test/mark, then starts the server. A
// subscriber of test/* gets the filtered value; a POST to the glob leaves that value
// unchanged, so it sends nothing and the version stays (upstream sends an empty "[]"
// patch): a second subscriber resuming with ?v= at the first message's version gets no
// snapshot, and the first frame either subscriber gets is the change a PUT of test/mark
// makes. GET answers the filtered value throughout. The server must not be started;
// the helper chains its own OnStorageEvent before the one set.
func StreamBroadcastFilterTest(t *testing.T, server *Server) {
	t.Helper()
	server.ReadFilter("test/*", streamMarkFilter)
	barrier := installStreamBarrier(server)
	streamStart(t, server, "StreamBroadcastFilterTest")
	sub := streamDial(t, server, "/test/*")
	defer sub.close()
	first := sub.next("the first message")
	if !sameJSON(sub.state, json.RawMessage(streamFiltered)) {
		t.Fatalf("the first message holds %s, want the filtered value %s", sub.state, streamFiltered)
	}
	sub.expectRead(server, "test/*", "the first message")

	index := streamWrite(t, server, http.MethodPost, "test/*", TEST_DATA)
	barrier.wait(t, "test/"+index) // its broadcast is over: a frame it sent is queued
	if got := streamRead(t, server, "test/*"); !sameJSON(got, json.RawMessage(streamFiltered)) {
		t.Fatalf("after POST /test/* GET /test/* answers %s, want the filtered value %s", got, streamFiltered)
	}
	resumed := streamDial(t, server, "/test/*?v="+first.Version)
	defer resumed.close()
	// A resume at the current version gets no first message: wait until it joined the
	// pool, so the next write is the first it sees.
	deadline := time.Now().Add(streamWait)
	for server.Stream.Connections("test/*") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the resumed subscriber never joined the pool of test/*")
		}
		time.Sleep(time.Millisecond) // polling with a deadline: the join sends nothing to wait on
	}
	resumed.state = sub.state
	resumed.taken = 1 // it holds the first message already

	streamWrite(t, server, http.MethodPut, "test/mark", json.RawMessage(`{"mark":true}`))
	sub.next("PUT /test/mark")
	if !sameJSON(sub.state, json.RawMessage(streamFilteredMarked)) {
		t.Fatalf("the first frame after POST /test/* left the subscriber with %s, want %s: a write that left the filtered value unchanged sent a frame", sub.state, streamFilteredMarked)
	}
	sub.expectRead(server, "test/*", "after PUT /test/mark")
	msg := resumed.next("PUT /test/mark, to the resumed subscriber")
	if msg.Snapshot && !server.NoPatch {
		t.Fatalf("the subscriber resuming at version %s got a snapshot first: the write that left the filtered value unchanged moved the version", first.Version)
	}
	resumed.expectRead(server, "test/*", "after PUT /test/mark, to the resumed subscriber")
}

// StreamBroadcastForcePatchTest sets ForcePatch and starts the server, then checks
// that four POSTs to test/* each reach a subscriber as a patch (never a snapshot, even
// where the whole value would be smaller) and that the subscriber holds what GET
// answers. The server must not be started. (NoPatch wins over ForcePatch: with it set,
// this helper fails.)
func StreamBroadcastForcePatchTest(t *testing.T, server *Server) {
	t.Helper()
	server.ForcePatch = true
	streamStart(t, server, "StreamBroadcastForcePatchTest")
	sub := streamDial(t, server, "/test/*")
	defer sub.close()
	sub.next("the first message")
	for i := 1; i <= 4; i++ {
		what := fmt.Sprintf("POST /test/* number %d", i)
		streamWrite(t, server, http.MethodPost, "test/*", TEST_DATA)
		if msg := sub.next(what); msg.Snapshot {
			t.Fatalf("%s: ForcePatch is set but the message is a snapshot", what)
		}
		sub.expectRead(server, "test/*", what)
	}
}

// StreamBroadcastNoPatchTest sets NoPatch and starts the server, then checks that two
// POSTs to test/* each reach a subscriber as a snapshot of the whole list, equal to
// what GET answers. The server must not be started.
func StreamBroadcastNoPatchTest(t *testing.T, server *Server) {
	t.Helper()
	server.NoPatch = true
	streamStart(t, server, "StreamBroadcastNoPatchTest")
	sub := streamDial(t, server, "/test/*")
	defer sub.close()
	sub.next("the first message")
	for i := 1; i <= 2; i++ {
		what := fmt.Sprintf("POST /test/* number %d", i)
		streamWrite(t, server, http.MethodPost, "test/*", TEST_DATA)
		if msg := sub.next(what); !msg.Snapshot {
			t.Fatalf("%s: NoPatch is set but the message is a patch: %s", what, msg.Data)
		}
		sub.expectRead(server, "test/*", "after "+what)
		if list := streamList(t, sub.state, what); len(list) != i {
			t.Fatalf("after %s the subscriber holds %d entries, want %d", what, len(list), i)
		}
	}
}

// streamNewVersion fails the test unless msg carries another version than previous (a
// message that changes the value moves the version); it returns msg's.
func streamNewVersion(t *testing.T, msg messages.Message, previous, what string) string {
	t.Helper()
	if msg.Version == previous {
		t.Fatalf("%s: the message kept version %s, want a new one", what, previous)
	}
	return msg.Version
}
