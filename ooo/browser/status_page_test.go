package browser_test

// TestBrowser_StatusPage opens pivot's status page (<RoutePrefix>/ui) in headless
// Chromium against a running pivot and node (real ooo servers on 127.0.0.1), reads the
// page's DOM after its script ran (chromium --dump-dom), and checks that it shows the
// node up, then down once the node is stopped and a trigger to it failed, then up again
// once the node is back on the same address. It saves a screenshot of each state in
// $PIVOT_ARTEFACTS (default: pivot-artefacts under the OS temp dir) and logs the paths.
//
//	go test -race -v -run StatusPage ./ooo/browser/

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
)

// pageWait bounds every wait of the status page test; passing runs take seconds.
const pageWait = 30 * time.Second

// readToken is the status page's read-only credential in this test.
const readToken = "read-only-operator-token"

// pageInstance is one running instance of the status page test.
type pageInstance struct {
	server *ooo.Server
	result pivot.SetupResult
}

func startPageInstance(t *testing.T, db ooo.Database, addr, pivotAddr string) *pageInstance {
	t.Helper()
	s := &ooo.Server{Silence: true, Storage: db, Pivot: pivotAddr}
	result := pivot.Setup(s, pivot.Config{
		Keys:       []pivot.Key{{Path: "users/*"}},
		NodesKey:   "things/*",
		Token:      "status-page-cluster-token",
		ReadToken:  readToken,
		BackoffMin: 5 * time.Millisecond,
		BackoffMax: 100 * time.Millisecond,
	})
	if err := s.Start(addr); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { s.Close(os.Interrupt) })
	return &pageInstance{server: s, result: result}
}

// artefactDir is where the test saves its screenshots.
func artefactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PIVOT_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "pivot-artefacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artefact dir: %v", err)
	}
	return dir
}

// headless runs one headless Chromium on url with the extra flags (--dump-dom,
// --screenshot=...) and returns its standard output. --virtual-time-budget lets the
// page's script run and its requests finish before the dump.
func headless(t *testing.T, chromium, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pageWait)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--window-size=1100,700", "--virtual-time-budget=3000",
		"--user-data-dir=" + t.TempDir()}, flags...)
	cmd := exec.CommandContext(ctx, chromium, append(args, url)...)
	var out strings.Builder
	errs := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = &out, errs
	ownGroup(cmd)
	err := cmd.Run()
	if cmd.Process != nil {
		_ = killGroup(cmd.Process.Pid) // its helpers, if any outlived it
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", flags, err, errs.String())
	}
	return out.String()
}

// nodeRow finds the row the page shows for the node at addr.
func nodeRow(dom, addr string) string {
	re := regexp.MustCompile(`<tr data-node="` + regexp.QuoteMeta(addr) + `"[^>]*>.*?</tr>`)
	return re.FindString(dom)
}

func TestBrowser_StatusPage(t *testing.T) {
	chromium := requireChromium(t)
	hub := startPageInstance(t, &ooo.MemoryStorage{}, "127.0.0.1:0", "")
	nodeDB := &ooo.MemoryStorage{}
	node := startPageInstance(t, nodeDB, "127.0.0.1:0", hub.server.Address)
	nodeAddr := node.server.Address
	if _, err := hub.server.Storage.Set("things/node", json.RawMessage(fmt.Sprintf(`{"ip":%q}`, nodeAddr))); err != nil {
		t.Fatal(err)
	}
	page := "http://" + hub.server.Address + "/~pivot/ui#token=" + readToken
	dir := artefactDir(t)

	// waitNode polls the pivot's Status (not the page) until the node is healthy or not.
	waitNode := func(healthy bool) {
		t.Helper()
		deadline := time.Now().Add(pageWait)
		for {
			for _, n := range hub.result.Status().Nodes {
				if n.Address == nodeAddr && n.Healthy == healthy && (!healthy || !n.LastContact.IsZero()) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the pivot did not see the node healthy=%v within %s: %+v", healthy, pageWait, hub.result.Status().Nodes)
			}
			time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
		}
	}
	// shows reads the page and checks the node's row.
	// A failing node turns dormant after 10 failed triggers: either badge says down.
	shows := func(state, healthy string, badges ...string) {
		t.Helper()
		dom := headless(t, chromium, page, "--dump-dom")
		row := nodeRow(dom, nodeAddr)
		badged := false
		for _, b := range badges {
			badged = badged || strings.Contains(row, `>`+b+`<`)
		}
		if !strings.Contains(row, `data-healthy="`+healthy+`"`) || !badged {
			t.Fatalf("%s: the page's row for the node is %q; want healthy=%s and a badge of %q.\npage:\n%s", state, row, healthy, badges, dom)
		}
		if !strings.Contains(dom, "users/*") || !strings.Contains(dom, "· pivot") {
			t.Fatalf("%s: the page lacks the keys or the role:\n%s", state, dom)
		}
		shot := filepath.Join(dir, "status-page-"+state+".png")
		headless(t, chromium, page, "--screenshot="+shot)
		if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: no screenshot at %s: %v", state, shot, err)
		}
		t.Logf("%s: the page shows %s; screenshot %s", state, row, shot)
	}

	if _, err := node.server.Storage.Set("users/a", json.RawMessage(`"hello"`)); err != nil {
		t.Fatal(err)
	}
	waitNode(true)
	shows("node-up", "true", "up")

	node.server.Close(os.Interrupt)
	if _, err := hub.server.Storage.Set("users/b", json.RawMessage(`"while the node is down"`)); err != nil {
		t.Fatal(err)
	}
	waitNode(false)
	shows("node-down", "false", "down", "dormant")

	startPageInstance(t, nodeDB, nodeAddr, hub.server.Address)
	waitNode(true)
	shows("node-back", "true", "up")
}
