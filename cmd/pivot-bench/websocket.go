package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// figWebsocket names the figure of the websocket scenario.
const figWebsocket = "write on A (REST) → websocket on B"

// modeReread is the baseline of the websocket scenario: the same delta cluster, with
// node B's pools re-reading and diffing their whole value on every broadcast
// (ooo.Server.Stream.FullRead) instead of following the change.
const modeReread = "reread"

// wsRun is the websocket scenario on one cluster: one collection size, one stream path.
type wsRun struct {
	c     *cluster
	size  int
	sub   *wsSubscriber
	fig   *figure
	rest  *http.Client
	taken int
	spent time.Duration
	done  bool
}

// runWebsocket measures, with the synced collection holding each of sizes entries, the
// time from a PUT of one entry over REST on node A until a raw websocket subscriber of
// the collection on node B receives the frame holding it: A's REST handler and storage,
// A's push to the pivot, the pivot's trigger, B's pull and apply, B's broadcast. One
// cluster (a pivot and two nodes on MemoryStorage) per size and stream path, all alive
// at once; samples go round-robin over them, so a change in the machine's load hits
// every size and both paths alike. Each write puts a new marker value in one member,
// which a patch carries whole, and the subscriber looks for it in the frames it
// receives.
func runWebsocket(r *results, o options, modes []string, sizes []int) error {
	var runs []*wsRun
	defer func() {
		for _, run := range runs {
			run.sub.close()
			run.c.close()
		}
	}()
	for _, size := range sizes {
		for _, mode := range modes {
			c, err := newStreamCluster(size, mode == modeReread, o.logger)
			if err != nil {
				return err
			}
			run := &wsRun{c: c, size: size,
				fig:  &figure{name: figWebsocket, size: sizeLabel(size), mode: mode, unit: unitMs},
				rest: &http.Client{Timeout: o.deadline},
			}
			runs = append(runs, run)
			sub, err := dialSubscriber(c.nodes[1].addr, "/"+syncedPath, o.deadline)
			if err != nil {
				return err
			}
			run.sub = sub
			r.add(run.fig)
		}
	}
	const warm = 5
	for {
		left := false
		for _, run := range runs {
			if run.done {
				continue
			}
			if err := run.sample(o, warm); err != nil {
				return err
			}
			samples, budget := o.wsCount(run.fig.mode)
			recorded := run.taken - warm
			switch {
			case recorded >= samples:
				run.done = true
			case recorded >= minSamples && run.spent > budget:
				run.done = true
				run.fig.note = fmt.Sprintf("(%s budget)", budget)
			}
			left = left || !run.done
		}
		if !left {
			return nil
		}
	}
}

// newStreamCluster is a delta cluster of a pivot and two nodes on MemoryStorage holding
// size entries, whose websocket pools re-read on every broadcast when fullRead is set.
func newStreamCluster(size int, fullRead bool, logger *slog.Logger) (*cluster, error) {
	c := &cluster{mode: modeDelta, store: storeMemory, wire: newWire(), logger: logger, fullRead: fullRead}
	return c.startAll(2, size)
}

// sample takes one sample; the first warm ones are not recorded.
func (run *wsRun) sample(o options, warm int) error {
	i := run.taken
	run.taken++
	idx := 0
	if run.size > 0 {
		idx = (i*7919 + 1) % run.size
	}
	k := entryKey(idx)
	marker := fmt.Sprintf("ws-%s-%d", run.fig.mode, i)
	seen := run.sub.expect(`"` + marker + `"`)
	a := run.c.nodes[0]
	t0 := time.Now()
	if err := put(run.rest, a.addr, k, wsEntryData(idx, marker)); err != nil {
		return err
	}
	at, err := wait(seen, o.deadline, k+" on node B's websocket")
	if err != nil {
		return err
	}
	if err := run.c.settle(o.deadline); err != nil {
		return err
	}
	if i < warm {
		return nil
	}
	run.spent += time.Since(t0)
	run.fig.samples = append(run.fig.samples, ms(at.Sub(t0)))
	return nil
}

// wsEntryData is entry i's data with a marker member: entryData's shape plus the value a
// subscriber looks for.
func wsEntryData(i int, marker string) string {
	return fmt.Sprintf(`{"name":"user number %d","email":"user%d@example.test","marker":%q}`, i, i, marker)
}

// put writes body at key on addr over ooo's REST route.
func put(client *http.Client, addr, key, body string) error {
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/"+key, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("bench: PUT %s: %w", key, err)
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("bench: PUT %s: %w", key, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: PUT %s: status %d", key, res.StatusCode)
	}
	return nil
}

// wsSubscriber is a raw websocket subscriber that reports when a frame holding an
// awaited marker arrives.
type wsSubscriber struct {
	ws   *websocket.Conn
	done chan struct{}

	mu   sync.Mutex
	want []byte
	seen chan time.Time
}

// dialSubscriber subscribes to path on addr and returns once the first snapshot came.
func dialSubscriber(addr, path string, timeout time.Duration) (*wsSubscriber, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+path, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: subscribe to %s on %s: %w", path, addr, err)
	}
	s := &wsSubscriber{ws: ws, done: make(chan struct{})}
	first := make(chan time.Time, 1)
	s.seen = first
	go s.read()
	if _, err := wait(first, timeout, "the first snapshot of "+path); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// read receives frames until the connection ends. The first frame is the snapshot and
// is reported on the channel dialSubscriber waits on.
func (s *wsSubscriber) read() {
	defer close(s.done)
	first := true
	for {
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		s.mu.Lock()
		var seen chan time.Time
		if first || (s.want != nil && bytes.Contains(data, s.want)) {
			seen, s.want, s.seen = s.seen, nil, nil
			first = false
		}
		s.mu.Unlock()
		if seen != nil {
			seen <- now
		}
	}
}

// expect returns a channel that receives the arrival time of the next frame holding
// marker. Call it before the write.
func (s *wsSubscriber) expect(marker string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	s.mu.Lock()
	s.want, s.seen = []byte(marker), ch
	s.mu.Unlock()
	return ch
}

// close ends the subscription and waits for its reader.
func (s *wsSubscriber) close() {
	if s == nil {
		return
	}
	_ = s.ws.Close()
	<-s.done
}
