//go:build unix

package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	oio "github.com/benitogf/pivot/ooo/io"
)

// TestProgram_WaitClose runs the program as its own process, as it runs in production:
// Start, then WaitClose until a signal. It checks that the program serves, and that
// SIGTERM makes WaitClose close the server (OnClose runs) and main return.
func TestProgram_WaitClose(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	nextLine := func(what string) string {
		t.Helper()
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the program ended before printing %s", what)
			}
			return line
		case <-time.After(waitFor):
			t.Fatalf("timed out waiting for the program to print %s", what)
		}
		return ""
	}
	addr, ok := strings.CutPrefix(nextLine("its address"), "listening ")
	if !ok || addr == "" {
		t.Fatalf("the program printed %q, want \"listening <address>\"", addr)
	}

	c := &http.Client{Timeout: waitFor}
	header := http.Header{"Authorization": {"Bearer process"}}
	if err := oio.RemoteSet(c, false, addr, "books/one", Book{Title: "One"}, header); err != nil {
		t.Fatalf("RemoteSet to the program: %v", err)
	}
	if got, err := oio.RemoteGet[Book](c, false, addr, "books/one", header); err != nil || got.Data.Title != "One" {
		t.Fatalf("RemoteGet from the program = %+v, %v", got, err)
	}

	// A SIGTERM sent before WaitClose listens is ignored by the program (see
	// main): send it again until the program answers, a bounded number of times.
	var line string
	for i := 0; ; i++ {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the program ended before printing that OnClose ran")
			}
			line = l
		case <-time.After(100 * time.Millisecond):
			if i < 50 {
				continue
			}
			t.Fatal("the program never printed that OnClose ran")
		}
		break
	}
	if line != "closed" {
		t.Fatalf("the program printed %q after SIGTERM, want \"closed\"", line)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the program ended with %v, want exit status 0", err)
		}
	case <-time.After(waitFor):
		t.Fatal("the program did not exit after SIGTERM")
	}
}
