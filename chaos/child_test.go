package chaos_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo/storage"
)

// Process mode: each member runs in a child process, the test binary itself started
// again with childEnv set, so that a stop can be a real SIGKILL. The child serves,
// beside the ooo and pivot routes, a small debug API under /~chaos/ through which the
// suite reads its change feeds and clocks, calls its storages and sets its wall clock.
// Its pivot requests go through a proxy in the test process that applies the same
// fault layer as the in-process members' transports.

// childEnv names the environment variable that makes the test binary run one instance
// instead of the tests; its value is the launchSpec, as JSON.
const childEnv = "CHAOS_CHILD_SPEC"

// childReady is the line a child prints on its standard output once it serves.
const childReady = "chaos-child-ready"

// TestMain runs a child instance when childEnv is set, the tests otherwise.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childMain(spec))
	}
	os.Exit(m.Run())
}

// childMain runs one instance until SIGTERM (a graceful stop) or SIGKILL.
func childMain(raw string) int {
	var s launchSpec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		fmt.Fprintf(os.Stderr, "chaos child: bad spec: %v\n", err)
		return 2
	}
	var wall skewClock
	wall.offset.Store(s.Offset)
	proxy, err := url.Parse("http://" + s.Proxy)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos child %s: bad proxy: %v\n", s.Name, err)
		return 2
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyURL(proxy), MaxIdleConnsPerHost: 16, IdleConnTimeout: 5 * time.Second,
	}}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	l, err := launch(s, wall.now, client, os.Stderr, func(l *local) {
		l.server.Router = mux.NewRouter()
		debugRoutes(l.server.Router, l, &wall)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos child %s: %v\n", s.Name, err)
		return 1
	}
	fmt.Println(childReady)
	<-term
	_ = l.stop(false)
	return 0
}

// wireChange is a storage.Change on the debug API; Data travels as base64, so the
// bytes compared are exactly the stored ones.
type wireChange struct {
	Key              string
	Created, Updated int64
	Deleted          bool
	Data             []byte
	Seq              uint64
	Remote           bool
}

type wireChanges struct {
	Next    uint64
	Changes []wireChange
}

// debugRoutes serves the debug API of a child on r.
func debugRoutes(r *mux.Router, l *local, wall *skewClock) {
	answer := func(w http.ResponseWriter, v any, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	num := func(r *http.Request, name string) uint64 {
		n, _ := strconv.ParseUint(r.URL.Query().Get(name), 10, 64)
		return n
	}
	r.HandleFunc("/~chaos/changes", func(w http.ResponseWriter, r *http.Request) {
		changes, next, err := l.changes(r.URL.Query().Get("path"), num(r, "since"), int(num(r, "limit")))
		out := wireChanges{Next: next, Changes: make([]wireChange, 0, len(changes))}
		for _, c := range changes {
			out.Changes = append(out.Changes, wireChange{Key: c.Key, Created: c.Created, Updated: c.Updated,
				Deleted: c.Deleted, Data: c.Data, Seq: c.Seq, Remote: c.Remote})
		}
		answer(w, out, err)
	})
	r.HandleFunc("/~chaos/epoch", func(w http.ResponseWriter, r *http.Request) {
		ep, err := l.epoch(r.URL.Query().Get("path"))
		answer(w, ep, err)
	})
	r.HandleFunc("/~chaos/last", func(w http.ResponseWriter, r *http.Request) {
		last, err := l.clockLast(r.URL.Query().Get("path"))
		answer(w, last, err)
	})
	r.HandleFunc("/~chaos/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := l.status()
		answer(w, st, err)
	})
	r.HandleFunc("/~chaos/skew", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("ns"), 10, 64)
		if err == nil {
			wall.offset.Store(n)
		}
		answer(w, n, err)
	})
	r.HandleFunc("/~chaos/db", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		if err == nil {
			err = l.dbCall(r.URL.Query().Get("op"), r.URL.Query().Get("key"), data)
		}
		switch {
		case errors.Is(err, storage.ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
		case errors.Is(err, storage.ErrNoop):
			http.Error(w, err.Error(), http.StatusConflict)
		case errors.Is(err, storage.ErrCorrupt):
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		default:
			answer(w, "ok", err)
		}
	})
}

// child is a member's instance running in a child process.
type child struct {
	name   string
	base   string // "http://host:port/~chaos/"
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process is reaped
	client *http.Client
}

var _ instance = (*child)(nil)

// childStartLimit bounds how long a child may take to serve.
const childStartLimit = 20 * time.Second

// startChild starts a child process running s and waits until it serves. Its standard
// error (the engine's log) goes to logs.
func startChild(s launchSpec, logs io.Writer) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("chaos: start %s: %w", s.Name, err)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("chaos: start %s: %w", s.Name, err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	cmd.Stderr = logs
	cmd.SysProcAttr = childAttrs()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("chaos: start %s: %w", s.Name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("chaos: start %s: %w", s.Name, err)
	}
	ch := &child{
		name: s.Name, base: "http://" + s.Addr + "/~chaos/", cmd: cmd, exited: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == childReady && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		_ = cmd.Wait()
		close(ch.exited)
	}()
	timer := time.NewTimer(childStartLimit)
	defer timer.Stop()
	select {
	case ok := <-ready:
		if ok {
			return ch, nil
		}
		<-ch.exited
		return nil, fmt.Errorf("chaos: start %s: the child exited (%v)", s.Name, cmd.ProcessState)
	case <-timer.C:
		_ = ch.stop(true)
		return nil, fmt.Errorf("chaos: start %s: not serving after %s", s.Name, childStartLimit)
	}
}

// stop ends the child: SIGKILL when kill is set, else SIGTERM and, if it has not
// exited within ten seconds, SIGKILL. It returns once the process is reaped.
func (c *child) stop(kill bool) error {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	if err := c.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("chaos: signal %s: %w", c.name, err)
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-c.exited:
	case <-timer.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	c.client.CloseIdleConnections()
	return nil
}

// call makes one debug API request and decodes its JSON answer into out.
func (c *child) call(method, route string, q url.Values, body []byte, out any) error {
	req, err := http.NewRequest(method, c.base+route+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("chaos: %s %s: %w", c.name, route, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("chaos: %s %s: %w", c.name, route, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("chaos: %s %s: read answer: %w", c.name, route, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return fmt.Errorf("chaos: %s %s: %s: %w", c.name, route, bytes.TrimSpace(raw), storage.ErrNotFound)
	case http.StatusConflict:
		return fmt.Errorf("chaos: %s %s: %s: %w", c.name, route, bytes.TrimSpace(raw), storage.ErrNoop)
	case http.StatusUnprocessableEntity:
		return fmt.Errorf("chaos: %s %s: %s: %w", c.name, route, bytes.TrimSpace(raw), storage.ErrCorrupt)
	default:
		return fmt.Errorf("chaos: %s %s: status %d: %s", c.name, route, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("chaos: %s %s: decode answer: %w", c.name, route, err)
	}
	return nil
}

func (c *child) changes(path string, since uint64, limit int) ([]storage.Change, uint64, error) {
	var out wireChanges
	q := url.Values{"path": {path}, "since": {fmt.Sprint(since)}, "limit": {fmt.Sprint(limit)}}
	if err := c.call(http.MethodGet, "changes", q, nil, &out); err != nil {
		return nil, since, err
	}
	changes := make([]storage.Change, 0, len(out.Changes))
	for _, w := range out.Changes {
		changes = append(changes, storage.Change{
			Entry: storage.Entry{Key: w.Key, Created: w.Created, Updated: w.Updated, Deleted: w.Deleted, Data: w.Data},
			Seq:   w.Seq, Remote: w.Remote,
		})
	}
	return changes, out.Next, nil
}

func (c *child) epoch(path string) (string, error) {
	var ep string
	err := c.call(http.MethodGet, "epoch", url.Values{"path": {path}}, nil, &ep)
	return ep, err
}

func (c *child) clockLast(path string) (int64, error) {
	var last int64
	err := c.call(http.MethodGet, "last", url.Values{"path": {path}}, nil, &last)
	return last, err
}

func (c *child) dbCall(kind, key string, data []byte) error {
	var ok string
	return c.call(http.MethodPost, "db", url.Values{"op": {kind}, "key": {key}}, data, &ok)
}

func (c *child) status() (pivot.Status, error) {
	var st pivot.Status
	err := c.call(http.MethodGet, "status", nil, nil, &st)
	return st, err
}

func (c *child) setSkew(d time.Duration) error {
	var n int64
	return c.call(http.MethodPost, "skew", url.Values{"ns": {fmt.Sprint(int64(d))}}, nil, &n)
}

// faultProxy is the HTTP proxy a child's pivot engine sends its requests through: it
// hands each one to the member's faultTransport, so links break for a child process
// as they do for an in-process member. A request the fault layer fails gets no
// answer at all: the proxy closes the connection, and the child sees a transport error.
type faultProxy struct {
	addr string
	srv  *http.Server
}

func newFaultProxy(addr string, tr *testcluster.Transport) (*faultProxy, error) {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("chaos: proxy on %s: %w", addr, err)
	}
	hop := map[string]bool{"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
		"Proxy-Authorization": true, "Transfer-Encoding": true, "Te": true, "Upgrade": true}
	handler := func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.RequestURI = ""
		for h := range hop {
			out.Header.Del(h)
		}
		resp, err := tr.RoundTrip(out)
		if err != nil {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, herr := hj.Hijack(); herr == nil {
					_ = conn.Close()
					return
				}
			}
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			if !hop[k] {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}
	p := &faultProxy{addr: addr, srv: &http.Server{Handler: http.HandlerFunc(handler), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *faultProxy) close() { _ = p.srv.Close() }
