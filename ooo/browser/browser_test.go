package browser_test

// This test runs the published JS client (npm ooo-client 1.0.0, with its fast-json-patch
// and ky dependencies, unmodified) in headless Chromium against a real ooo server on
// 127.0.0.1. The page (testdata/index.html, testdata/scenarios.js) subscribes, writes
// through the client's own REST helpers or asks this test to push with the Go client,
// and after each message reports the state the JS client rebuilt. Every reported state
// is compared here with what the server's storage holds at that moment.
//
// Requirements: Chromium (the binary named by $CHROMIUM, else chromium on PATH or
// /usr/bin/chromium) and
// testdata/node_modules (run npm ci in testdata). When one is missing the test FAILS
// if CI=true (CI must exercise it) and is SKIPPED with a message otherwise.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/benitogf/pivot/ooo"
	oio "github.com/benitogf/pivot/ooo/io"
	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

// pageTimeout bounds the whole page run; each step in the page has its own 5s bound.
const pageTimeout = 90 * time.Second

// expectedSteps lists every report the page must send, once each, with no problem.
var expectedSteps = []string{
	"object/empty", "object/created", "object/updated", "object/deleted",
	"list/empty", "list/pushed", "list/pushed-second", "list/updated", "list/deleted",
	"feed/empty-0", "feed/empty-1",
	"feed/push-1-0", "feed/push-1-1", "feed/push-2-0", "feed/push-2-1",
	"feed/push-3-0", "feed/push-3-1", "feed/push-4-0", "feed/push-4-1",
	"feed/late",
	"restart/empty", "restart/before", "restart/reconnected", "restart/after",
	"clock/ticks",
}

func TestBrowser_OooClient(t *testing.T) {
	chromium := requireChromium(t)
	testdata := requireModules(t)

	results := newResults()
	s := &ooo.Server{Silence: true, Router: mux.NewRouter(), Storage: &storage.MemoryStorage{}}
	registerPage(t, s, testdata, results)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { s.Close(os.Interrupt) })
	t.Cleanup(results.restarts.Wait) // runs first: no restart may race the final Close

	// From here on the test reads the address only through results, under its lock:
	// a restart (which rewrites s.Address) then happens after this read for the race
	// detector too, which cannot see that it waits for the browser's request.
	address := s.Address
	results.setAddress(address)
	browser := launch(t, chromium, "http://"+address+"/__test/index.html")

	select {
	case <-results.done:
	case <-time.After(pageTimeout):
		t.Fatalf("the page did not finish within %s.\nreports so far:\n%s\nchromium output (tail):\n%s",
			pageTimeout, results.summary(), browser.tail())
	}

	results.mu.Lock()
	defer results.mu.Unlock()
	for _, e := range results.errors {
		t.Errorf("page: %s", e)
	}
	for _, name := range expectedSteps {
		switch n := results.count[name]; n {
		case 1:
		case 0:
			t.Errorf("step %s was never reported", name)
		default:
			t.Errorf("step %s was reported %d times", name, n)
		}
	}
	if len(results.count) != len(expectedSteps) {
		t.Errorf("the page reported %d distinct steps, want %d:\n%s", len(results.count), len(expectedSteps), results.summaryLocked())
	}
	t.Logf("reports:\n%s", results.summaryLocked())
}

// results collects what the page reports.
type results struct {
	mu     sync.Mutex
	count  map[string]int
	lines  []string
	errors []string
	once   sync.Once
	done   chan struct{}
	// restarts tracks server restarts the page asked for.
	restarts sync.WaitGroup
	// address is the server's, kept across restarts.
	address string
}

func newResults() *results {
	return &results{count: map[string]int{}, done: make(chan struct{})}
}

func (r *results) setAddress(address string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.address = address
}

func (r *results) serverAddress() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.address
}

func (r *results) add(step, line string, problems ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if step != "" {
		r.count[step]++
	}
	r.lines = append(r.lines, line)
	for _, p := range problems {
		if p != "" {
			r.errors = append(r.errors, p)
		}
	}
}

func (r *results) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.summaryLocked()
}

func (r *results) summaryLocked() string {
	return strings.Join(r.lines, "\n") + "\nerrors:\n" + strings.Join(r.errors, "\n")
}

// report is what the page posts to /__test/report.
type report struct {
	Scenario string          `json:"scenario"`
	Step     string          `json:"step"`
	Key      *string         `json:"key"`
	State    json.RawMessage `json:"state"`
	Problem  string          `json:"problem"`
	Ticks    []float64       `json:"ticks"`
	Error    string          `json:"error"`
	Done     bool            `json:"done"`
}

// registerPage adds the test's routes under /__test/ to s.Router; it must run before
// Start, since the server's key routes catch everything else.
func registerPage(t testing.TB, s *ooo.Server, testdata string, r *results) {
	t.Helper()
	httpClient := &http.Client{Timeout: 5 * time.Second}

	s.Router.HandleFunc("/__test/report", func(w http.ResponseWriter, req *http.Request) {
		var rep report
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20)).Decode(&rep); err != nil {
			http.Error(w, "bad report: "+err.Error(), http.StatusBadRequest)
			return
		}
		checkReport(s, rep, r)
		writeJSON(w, map[string]bool{"ok": true})
	}).Methods(http.MethodPost)

	// The page asks the Go client to push, to show a write from another client.
	s.Router.HandleFunc("/__test/act", func(w http.ResponseWriter, req *http.Request) {
		var act struct {
			Action string          `json:"action"`
			Path   string          `json:"path"`
			Value  json.RawMessage `json:"value"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20)).Decode(&act); err != nil {
			http.Error(w, "bad action: "+err.Error(), http.StatusBadRequest)
			return
		}
		switch act.Action {
		case "push":
		case "restart":
			// Answer first: Close waits for requests in flight, this one included.
			r.restarts.Add(1)
			go restart(s, r)
			writeJSON(w, map[string]bool{"ok": true})
			return
		default:
			http.Error(w, "unknown action "+act.Action, http.StatusBadRequest)
			return
		}
		index, err := oio.RemotePushContext(req.Context(), httpClient, false, r.serverAddress(), act.Path, act.Value, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]string{"index": index})
	}).Methods(http.MethodPost)

	files := http.StripPrefix("/__test/", http.FileServer(http.Dir(testdata)))
	s.Router.PathPrefix("/__test/").Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Module scripts need a JavaScript MIME type whatever the system's mime table says.
		if ext := filepath.Ext(req.URL.Path); ext == ".js" || ext == ".mjs" {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		files.ServeHTTP(w, req)
	})).Methods(http.MethodGet)
}

// restart closes s and starts it again on the same address, as a process restart
// would; the storage (and so the data) is kept.
func restart(s *ooo.Server, r *results) {
	defer r.restarts.Done()
	address := r.serverAddress()
	s.Close(os.Interrupt)
	if err := s.Start(address); err != nil {
		r.add("", "restart failed: "+err.Error(), "restart the server at "+address+": "+err.Error())
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// checkReport compares one report with the server and records the outcome.
func checkReport(s *ooo.Server, rep report, r *results) {
	switch {
	case rep.Done:
		r.add("", "done")
		r.once.Do(func() { close(r.done) })
	case rep.Error != "":
		r.add("", "error in "+rep.Scenario+": "+rep.Error, rep.Scenario+": "+rep.Error)
	case rep.Scenario == "clock":
		name := "clock/" + rep.Step
		r.add(name, fmt.Sprintf("%s %v", name, rep.Ticks), checkTicks(rep.Ticks))
	default:
		name := rep.Scenario + "/" + rep.Step
		var problems []string
		if rep.Problem != "" {
			problems = append(problems, fmt.Sprintf("%s: the client saw %s: %s", name, rep.State, rep.Problem))
		}
		if rep.Key == nil {
			problems = append(problems, name+": report without a key")
		} else if err := sameAsServer(s, *rep.Key, rep.State); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
		}
		r.add(name, fmt.Sprintf("%s %s", name, rep.State), problems...)
	}
}

// sameAsServer reports whether the JS client's state equals the server's value of k.
// Both are decoded the way JavaScript reads JSON (numbers as float64): the JS client
// cannot hold 64-bit stamps exactly, and the page posts them back rounded.
func sameAsServer(s *ooo.Server, k string, state json.RawMessage) error {
	stored, err := s.Storage.Get(k)
	if errors.Is(err, storage.ErrNotFound) {
		stored = []byte(meta.EmptyObject)
	} else if err != nil {
		return fmt.Errorf("read %s from the server: %w", k, err)
	}
	var want, got any
	if err := json.Unmarshal(stored, &want); err != nil {
		return fmt.Errorf("decode the server's %s: %w", k, err)
	}
	if err := json.Unmarshal(state, &got); err != nil {
		return fmt.Errorf("decode the client's %s: %w", k, err)
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("the client rebuilt %s but the server holds %s", bytes.TrimSpace(state), bytes.TrimSpace(stored))
	}
	return nil
}

// checkTicks checks two clock messages: decimal ns stamps, increasing, near now.
func checkTicks(ticks []float64) string {
	if len(ticks) != 2 {
		return fmt.Sprintf("clock: want 2 ticks, got %v", ticks)
	}
	now := float64(time.Now().UnixNano())
	for _, tick := range ticks {
		if d := time.Duration(now - tick); d < -time.Minute || d > time.Minute {
			return fmt.Sprintf("clock: tick %s is %s away from now", strconv.FormatFloat(tick, 'f', 0, 64), d)
		}
	}
	if ticks[1] <= ticks[0] {
		return fmt.Sprintf("clock: ticks do not increase: %v", ticks)
	}
	return ""
}

// requirement fails under CI and skips elsewhere.
func requirement(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so this is a failure: .ci/run must install it)", msg)
	}
	t.Skipf("%s; skipping the browser test (it fails instead when CI=true)", msg)
}

func requireChromium(t testing.TB) string {
	t.Helper()
	if path := os.Getenv("CHROMIUM"); path != "" {
		if _, err := os.Stat(path); err != nil {
			requirement(t, "$CHROMIUM=%s: %v", path, err)
		}
		return path
	}
	if path, err := exec.LookPath("chromium"); err == nil {
		return path
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	requirement(t, "chromium not found: install Debian's chromium package (apt-get install chromium)")
	return ""
}

func requireModules(t testing.TB) string {
	t.Helper()
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatalf("locate testdata: %v", err)
	}
	for _, f := range []string{
		"node_modules/ooo-client/ooo.js",
		"node_modules/fast-json-patch/index.mjs",
		"node_modules/ky/distribution/index.js",
	} {
		if _, err := os.Stat(filepath.Join(testdata, f)); err != nil {
			requirement(t, "testdata/%s is missing: run npm ci in ooo/browser/testdata", f)
		}
	}
	return testdata
}

// browserProcess is a running headless Chromium.
type browserProcess struct {
	out *tailBuffer
}

func (b *browserProcess) tail() string { return b.out.String() }

// launch starts headless Chromium on url and kills it (with every process it forked)
// when the test ends.
func launch(t testing.TB, chromium, url string) *browserProcess {
	t.Helper()
	profile := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, url)
	out := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		if err := killGroup(cmd.Process.Pid); err != nil {
			t.Errorf("stop chromium: %v", err)
		}
		cancel() // kills the main process where process groups do not exist
		_ = cmd.Wait()
	})
	return &browserProcess{out: out}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
