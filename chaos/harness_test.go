package chaos_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benitogf/pivot/internal/testcluster"
)

// The synced paths of every chaos cluster. users/* lives on a storage of its own (an
// "external" storage wired through SyncCallback, as in the README); the others live on
// the server's storage.
const (
	pathUsers    = "users/*"
	pathItems    = "items/*"
	pathSettings = "settings"
	pathNodes    = "things/*"
	// pathPosts is written only by POSTs of the copied-folder fault, never updated or
	// deleted, so every acknowledged POST must end there with its own data.
	pathPosts = "posts/*"
)

// syncedPaths lists every synced path, NodesKey included.
func syncedPaths() []string {
	return []string{pathUsers, pathItems, pathSettings, pathNodes, pathPosts}
}

// timings are the short durations a chaos cluster runs with.
type timings struct {
	maxSkew        time.Duration // storage clocks' MaxSkew
	syncInterval   time.Duration
	readBudget     time.Duration
	requestTimeout time.Duration
	repairInterval time.Duration // Config.RepairInterval: anti-entropy over data
	backoffMin     time.Duration
	backoffMax     time.Duration
	batchSize      int
	fanOut         int
	retention      time.Duration // storages' TombstoneRetention; 0 means the default (days)
}

func defaultTimings() timings {
	return timings{
		maxSkew:        250 * time.Millisecond,
		syncInterval:   150 * time.Millisecond,
		readBudget:     20 * time.Millisecond,
		requestTimeout: 400 * time.Millisecond,
		repairInterval: time.Second,
		backoffMin:     5 * time.Millisecond,
		backoffMax:     120 * time.Millisecond,
		batchSize:      7, // small, so pushes and pulls span several batches
		fanOut:         2,
	}
}

// timingsFor varies the batch size (2 to 10: a backlog spans many batches and, past 64
// of them, several rounds) and the pivot's fan-out (1 to 3) with the seed.
func timingsFor(seed uint64) timings {
	tm := defaultTimings()
	tm.batchSize = 2 + int(seed%9)
	tm.fanOut = 1 + int(seed/9%3)
	return tm
}

// take draws a port of the run's pool (see testcluster.Ports), failing the test when
// none is free.
func take(tb testing.TB, ports *testcluster.Ports) string {
	tb.Helper()
	addr, err := ports.Take()
	if err != nil {
		tb.Fatalf("chaos: %v", err)
	}
	return addr
}

// logRing keeps the last lines written to it: the pivot engines' logs, printed when a
// seed fails.
type logRing struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func (r *logRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	if over := len(r.lines) - r.max; over > 0 {
		r.lines = append(r.lines[:0:0], r.lines[over:]...)
	}
	return len(p), nil
}

func (r *logRing) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}
