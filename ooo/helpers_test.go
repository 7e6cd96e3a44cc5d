package ooo_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/internal/wstest"
)

// start runs a silent server on a free loopback port, configured by setup, and closes
// it at the end of the test.
func start(tb testing.TB, setup func(*ooo.Server)) *ooo.Server {
	tb.Helper()
	s := &ooo.Server{Silence: true}
	if setup != nil {
		setup(s)
	}
	if err := s.Start("localhost:0"); err != nil {
		tb.Fatalf("start: %v", err)
	}
	tb.Cleanup(func() { s.Close(os.Interrupt) })
	return s
}

// response is what a test request got back.
type response struct {
	status int
	body   string
	header http.Header
}

// do sends one real HTTP request to the server.
func do(tb testing.TB, s *ooo.Server, method, path, body string, header http.Header) response {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+s.Address+path, rd)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read: %v", method, path, err)
	}
	return response{status: res.StatusCode, body: string(out), header: res.Header}
}

// expect sends a request and checks its status, and its body when want is not "".
func expect(tb testing.TB, s *ooo.Server, method, path, body string, status int, want string) response {
	tb.Helper()
	res := do(tb, s, method, path, body, nil)
	if res.status != status {
		tb.Fatalf("%s %s: status %d (%q), want %d", method, path, res.status, res.body, status)
	}
	if want != "" && strings.TrimSpace(res.body) != want {
		tb.Fatalf("%s %s: body %q, want %q", method, path, res.body, want)
	}
	return res
}

// poll checks cond until it holds, failing the test after a deadline.
func poll(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	wstest.Poll(tb, what, cond)
}

// canonical re-encodes JSON with sorted keys and exact numbers, so equal documents
// compare equal as strings.
func canonical(data []byte) string { return wstest.Canonical(data) }

// subscribe opens a websocket on path of the server, or fails the test.
func subscribe(tb testing.TB, s *ooo.Server, path string, header http.Header) *wstest.Client {
	tb.Helper()
	return wstest.Dial(tb, "ws://"+s.Address+path, header)
}

// trySubscribe opens a websocket on path of the server; a refused handshake gives the
// error and the server's response.
func trySubscribe(tb testing.TB, s *ooo.Server, path string, header http.Header) (*wstest.Client, *http.Response, error) {
	tb.Helper()
	return wstest.TryDial(tb, "ws://"+s.Address+path, header)
}

// stored returns what the server's storage holds for k, as a client would see it.
func stored(tb testing.TB, s *ooo.Server, k string) []byte {
	tb.Helper()
	data, err := s.Storage.Get(k)
	if err != nil {
		tb.Fatalf("storage get %s: %v", k, err)
	}
	return data
}

// expectChildFailure runs the test named child in a child process with env set to
// name, and requires it to fail with report in its output: how the conformance helpers
// are shown to catch a broken server or storage.
func expectChildFailure(t *testing.T, child, env, name, report string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+child+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+name)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the helper passed a broken %s:\n%s", name, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("the child did not finish: %v\n%s", ctx.Err(), out)
	}
	if !strings.Contains(string(out), report) || !strings.Contains(string(out), "--- FAIL: "+child) {
		t.Fatalf("the helper failed, but not on %q:\n%s", report, out)
	}
}
