package ooo_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/benitogf/pivot/ooo/internal/wstest"
)

// Many writers and many subscribers at once, subscribers joining while the writes go
// on: every subscriber must end on exactly the server's final state.
func TestServer_ConcurrentWritersAndSubscribers(t *testing.T) {
	s := start(t, nil)
	const writers, writes, listSubs, keySubs = 8, 40, 16, 8
	long := strings.Repeat("y", 120)
	client := &http.Client{}
	send := func(method, path, body string) {
		req, err := http.NewRequest(method, "http://"+s.Address+path, strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		res, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Errorf("%s %s: %d", method, path, res.StatusCode)
		}
	}

	var subsMu sync.Mutex
	var subs []*wstest.Client
	var paths []string
	var joined sync.WaitGroup
	join := func(path string) {
		defer joined.Done()
		sub, _, err := trySubscribe(t, s, path, nil)
		if err != nil {
			t.Errorf("subscribe %s: %v", path, err)
			return
		}
		subsMu.Lock()
		subs = append(subs, sub)
		paths = append(paths, strings.TrimPrefix(path, "/"))
		subsMu.Unlock()
	}
	for i := 0; i < listSubs/2; i++ {
		joined.Add(1)
		go join("/c/*")
	}

	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < writes; i++ {
				k := fmt.Sprintf("/c/k%d", (w+i)%5)
				switch i % 4 {
				case 0:
					send("POST", "/c/*", fmt.Sprintf(`{"w":%d,"i":%d,"t":"%s"}`, w, i, long))
				case 1:
					send("PUT", k, fmt.Sprintf(`{"w":%d,"i":%d,"t":"%s"}`, w, i, long))
				case 2:
					send("PATCH", k, fmt.Sprintf(`{"i":%d}`, i))
				case 3:
					send("DELETE", k, "")
				}
				if w == 0 && i%10 == 0 { // more subscribers arrive mid-stream
					joined.Add(2)
					go join("/c/*")
					go join(fmt.Sprintf("/c/k%d", i%5))
				}
			}
		}(w)
	}
	for i := 0; i < keySubs; i++ {
		joined.Add(1)
		go join(fmt.Sprintf("/c/k%d", i%5))
	}
	wg.Wait()
	joined.Wait()
	if t.Failed() {
		return
	}
	for i, sub := range subs {
		sub.WaitState(expected(t, s, paths[i]))
		if msgs := sub.Messages(); !msgs[0].Snapshot {
			t.Fatalf("subscriber %d of %s: first message is a patch", i, paths[i])
		}
	}
	// The list really holds what the writers made.
	list := decodeList(t, expect(t, s, "GET", "/c/*", "", http.StatusOK, "").body)
	if len(list) < writers*writes/4 {
		t.Fatalf("list has %d items, want at least %d pushes", len(list), writers*writes/4)
	}
}
