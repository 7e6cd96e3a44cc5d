package chaos_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
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

// portPool hands out loopback ports below the kernel's ephemeral range, so a port that
// a stopped instance will listen on again is never taken meanwhile by the local end of
// an outgoing connection. It is shared by the seeds of one test run.
type portPool struct {
	mu   sync.Mutex
	used map[int]bool
	rng  *rand.Rand
}

func newPortPool(seed uint64) *portPool {
	return &portPool{used: map[int]bool{}, rng: rand.New(rand.NewPCG(seed, 0x90e7))}
}

// take returns a free "127.0.0.1:port".
func (p *portPool) take(tb testing.TB) string {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 1000 {
		port := 20000 + p.rng.IntN(12000)
		if p.used[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			continue
		}
		_ = ln.Close()
		p.used[port] = true
		return addr
	}
	tb.Fatal("chaos: no free loopback port found")
	return ""
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
