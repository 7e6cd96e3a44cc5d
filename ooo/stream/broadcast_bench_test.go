package stream_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/client"
)

// The benchmarks of this file measure what a user sees: a real ooo server on 127.0.0.1
// (MemoryStorage), writes made over REST, real websocket subscribers. Each runs the
// path that follows changes ("changes") beside the full re-read and diff of every
// broadcast ("fullread", Stream.FullRead) in the same run, interleaved, and reports both
// medians and their ratio.

// benchWait bounds every wait of a benchmark.
const benchWait = 60 * time.Second

// benchServer is one ooo server holding a list of entries under items/*.
type benchServer struct {
	srv    *ooo.Server
	client *http.Client
}

func newBenchServer(b *testing.B, fullRead bool, entries int) *benchServer {
	b.Helper()
	s := &ooo.Server{Silence: true}
	s.Stream.FullRead = fullRead
	if err := s.Start("localhost:0"); err != nil {
		b.Fatalf("start: %v", err)
	}
	b.Cleanup(func() { s.Close(os.Interrupt) })
	for i := 0; i < entries; i++ {
		if _, err := s.Storage.Set(itemKey(i), []byte(fmt.Sprintf(`{"n":%d,"text":"item %d of the list, with some text"}`, i, i))); err != nil {
			b.Fatal(err)
		}
	}
	return &benchServer{srv: s, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: benchWait}}
}

func itemKey(i int) string { return fmt.Sprintf("items/%08d", i) }

// put writes value at key over REST.
func (s *benchServer) put(b *testing.B, key, value string) {
	req, err := http.NewRequest(http.MethodPut, "http://"+s.srv.Address+"/"+key, strings.NewReader(value))
	if err != nil {
		b.Error(err)
		return
	}
	res, err := s.client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Errorf("PUT %s: status %d", key, res.StatusCode)
	}
}

// arrivals counts subscribers that still have to see the awaited write; the last one
// closes done. One channel and one timer per write, whatever the number of
// subscribers, so the wait costs the benchmark nothing per subscriber.
type arrivals struct {
	left atomic.Int64
	done chan struct{}
	size int // the frame size to read (tcpFloor only)
}

func newArrivals(n int) *arrivals {
	a := &arrivals{done: make(chan struct{})}
	a.left.Store(int64(n))
	return a
}

func (a *arrivals) arrive() {
	if a.left.Add(-1) == 0 {
		close(a.done)
	}
}

// wait waits until every subscriber arrived, bounded by benchWait.
func (a *arrivals) wait(b *testing.B, what string) {
	timer := time.NewTimer(benchWait)
	defer timer.Stop()
	select {
	case <-a.done:
	case <-timer.C:
		b.Fatalf("%d subscribers never saw %s", a.left.Load(), what)
	}
}

// watcher is a raw websocket subscriber that tells its arrivals when a frame holding
// the awaited marker arrives.
type watcher struct {
	mu     sync.Mutex
	want   []byte
	to     *arrivals
	size   int // the length of the last frame that held a marker
	frames atomic.Int64
}

func newWatcher(b *testing.B, s *benchServer, path string) *watcher {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+s.srv.Address+path, nil)
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	w := &watcher{}
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if w.frames.Add(1) == 1 {
				close(first)
			}
			w.mu.Lock()
			var to *arrivals
			if w.want != nil && bytes.Contains(data, w.want) {
				w.want, to, w.size = nil, w.to, len(data)
			}
			w.mu.Unlock()
			if to != nil {
				to.arrive()
			}
		}
	}()
	b.Cleanup(func() {
		_ = ws.Close()
		<-done
	})
	select {
	case <-first:
	case <-time.After(benchWait):
		b.Fatal("no first snapshot")
	}
	return w
}

// expect makes the watcher tell to when a frame holding marker arrives.
func (w *watcher) expect(marker string, to *arrivals) {
	w.mu.Lock()
	w.want, w.to = []byte(marker), to
	w.mu.Unlock()
}

// expectAll makes every watcher of ws await marker, and returns their arrivals.
func expectAll(ws []*watcher, marker string) *arrivals {
	a := newArrivals(len(ws))
	for _, w := range ws {
		w.expect(marker, a)
	}
	return a
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// report prints the medians of both paths and their ratio.
func report(b *testing.B, changes, full []time.Duration) {
	mc, mf := median(changes), median(full)
	b.ReportMetric(float64(mc.Microseconds()), "changes-µs")
	b.ReportMetric(float64(mf.Microseconds()), "fullread-µs")
	if mc > 0 {
		b.ReportMetric(float64(mf)/float64(mc), "ratio")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkWriteToSubscriber: one PUT of an entry of a list of n entries, until a raw
// websocket subscriber of the list receives the frame that holds it. Median per path.
// The two paths run one after the other, each on its own server, so that neither
// measures the other's garbage collection.
//
//	go test -run XXX -bench WriteToSubscriber -benchtime 20x ./ooo/stream/
func BenchmarkWriteToSubscriber(b *testing.B) {
	for _, n := range []int{0, 1000, 10000, 100000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var times [2][]time.Duration
			for k, fullRead := range []bool{false, true} {
				s := newBenchServer(b, fullRead, n)
				w := newWatcher(b, s, "/items/*")
				for i := 0; i < b.N; i++ {
					marker := fmt.Sprintf(`"write-%d"`, i)
					seen := expectAll([]*watcher{w}, marker)
					t0 := time.Now()
					s.put(b, itemKey(i%max(n, 1)), fmt.Sprintf(`{"w":"write-%d","text":"written by the benchmark"}`, i))
					seen.wait(b, marker)
					times[k] = append(times[k], time.Since(t0))
				}
				s.srv.Close(os.Interrupt)
			}
			report(b, times[0], times[1])
		})
	}
}

// BenchmarkWriteToManySubscribers: one PUT of an entry of a list of 1,000 entries,
// until the last of m raw subscribers of the list received it. Median per path, and
// tcpfloor-µs: the same frame delivered to m plain loopback TCP readers by one writer
// goroutine per connection (see tcpFloor), in the same run, the machine's floor for
// that design.
//
//	go test -run XXX -bench WriteToManySubscribers -benchtime 20x ./ooo/stream/
func BenchmarkWriteToManySubscribers(b *testing.B) {
	const entries = 1000
	for _, m := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", m), func(b *testing.B) {
			servers := []*benchServer{newBenchServer(b, false, entries), newBenchServer(b, true, entries)}
			watchers := [2][]*watcher{}
			for k, s := range servers {
				for j := 0; j < m; j++ {
					watchers[k] = append(watchers[k], newWatcher(b, s, "/items/*"))
				}
			}
			floor := newTCPFloor(b, m)
			var floorTimes []time.Duration
			times := [2][]time.Duration{}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for k, s := range servers {
					marker := fmt.Sprintf(`"write-%d"`, i)
					seen := expectAll(watchers[k], marker)
					t0 := time.Now()
					s.put(b, itemKey(i%entries), fmt.Sprintf(`{"w":"write-%d","text":"written by the benchmark"}`, i))
					seen.wait(b, marker)
					times[k] = append(times[k], time.Since(t0))
				}
				frame := bytes.Repeat([]byte{'x'}, watchers[0][0].size)
				t0 := time.Now()
				floor.deliver(frame).wait(b, "the floor's frame")
				floorTimes = append(floorTimes, time.Since(t0))
			}
			b.StopTimer()
			report(b, times[0], times[1])
			b.ReportMetric(float64(median(floorTimes).Microseconds()), "tcpfloor-µs")
		})
	}
}

// BenchmarkBurst: 10,000 PUTs by 8 concurrent writers on a list of 1,000 entries with
// 100 raw subscribers: the writes per second the server accepted, and the time from the
// first write until every subscriber saw the last one. One burst per path and
// iteration; run with -benchtime 1x.
//
//	go test -run XXX -bench Burst -benchtime 1x ./ooo/stream/
func BenchmarkBurst(b *testing.B) {
	const entries, subscribers, writes, writers = 1000, 100, 10000, 8
	servers := []*benchServer{newBenchServer(b, false, entries), newBenchServer(b, true, entries)}
	watchers := [2][]*watcher{}
	for k, s := range servers {
		for j := 0; j < subscribers; j++ {
			watchers[k] = append(watchers[k], newWatcher(b, s, "/items/*"))
		}
	}
	names := []string{"changes", "fullread"}
	var accepted, seen [2]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, s := range servers {
			last := fmt.Sprintf(`"last-%d"`, i)
			seenAll := expectAll(watchers[k], last)
			t0 := time.Now()
			var wg sync.WaitGroup
			var next atomic.Int64
			for g := 0; g < writers; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						j := int(next.Add(1))
						if j >= writes {
							return
						}
						s.put(b, itemKey(j%entries), fmt.Sprintf(`{"w":"burst-%d","text":"written by the benchmark"}`, j))
					}
				}()
			}
			wg.Wait()
			// The last write goes to an entry of its own, after every other one.
			s.put(b, itemKey(0), fmt.Sprintf(`{"w":"last-%d","text":"the last write"}`, i))
			accepted[k] = time.Since(t0)
			seenAll.wait(b, last)
			seen[k] = time.Since(t0)
		}
	}
	b.StopTimer()
	for k := range servers {
		b.ReportMetric(float64(writes)/accepted[k].Seconds(), names[k]+"-writes/s")
		b.ReportMetric(float64(seen[k].Milliseconds()), names[k]+"-all-seen-ms")
	}
	b.ReportMetric(0, "ns/op")
}

// benchItem is an entry of the benchmarks' lists, as an ooo/client subscriber decodes it.
type benchItem struct {
	W    string `json:"w"`
	N    int    `json:"n"`
	Text string `json:"text"`
}

// clientWatcher is an ooo/client subscriber that signals when the callback's state
// holds the awaited write at the awaited index.
type clientWatcher struct {
	mu    sync.Mutex
	index int
	want  string
	seen  chan struct{}
	first chan struct{}
	once  sync.Once
}

func newClientWatcher(b *testing.B, s *benchServer, path string) *clientWatcher {
	b.Helper()
	w := &clientWatcher{seen: make(chan struct{}, 1), first: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.Subscribe(ctx, "ws", s.srv.Address, path, nil, func(state []client.Meta[benchItem]) {
			w.once.Do(func() { close(w.first) })
			w.mu.Lock()
			hit := w.want != "" && w.index < len(state) && state[w.index].Data.W == w.want
			if hit {
				w.want = ""
			}
			w.mu.Unlock()
			if hit {
				w.seen <- struct{}{}
			}
		})
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-w.first:
	case <-time.After(benchWait):
		b.Fatal("no first callback")
	}
	return w
}

func (w *clientWatcher) expect(index int, want string) {
	w.mu.Lock()
	w.index, w.want = index, want
	w.mu.Unlock()
}

func (w *clientWatcher) wait(b *testing.B) {
	select {
	case <-w.seen:
	case <-time.After(benchWait):
		b.Fatal("the client callback never saw the write")
	}
}

// BenchmarkWriteToClient is BenchmarkWriteToSubscriber with an ooo/client subscriber:
// the time until its callback receives a state holding the write (which includes the
// copy of the whole list the callback is handed).
//
//	go test -run XXX -bench WriteToClient -benchtime 20x ./ooo/stream/
func BenchmarkWriteToClient(b *testing.B) {
	for _, n := range []int{0, 1000, 10000, 100000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var times [2][]time.Duration
			for k, fullRead := range []bool{false, true} {
				s := newBenchServer(b, fullRead, n)
				w := newClientWatcher(b, s, "items/*")
				for i := 0; i < b.N; i++ {
					index := i % max(n, 1)
					want := fmt.Sprintf("write-%d", i)
					w.expect(index, want)
					t0 := time.Now()
					s.put(b, itemKey(index), fmt.Sprintf(`{"w":%q,"text":"written by the benchmark"}`, want))
					w.wait(b)
					times[k] = append(times[k], time.Since(t0))
				}
				s.srv.Close(os.Interrupt)
			}
			report(b, times[0], times[1])
		})
	}
}
