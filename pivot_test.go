package pivot_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/stretchr/testify/require"
)

func TestConfig_Validate(t *testing.T) {
	valid := testConfig()
	require.NoError(t, valid.Validate())
	require.NoError(t, pivot.Config{NodesKey: "things/*"}.Validate(), "a NodesKey alone is enough")

	cases := []struct {
		field  string
		change func(*pivot.Config)
	}{
		{"Keys", func(c *pivot.Config) { c.Keys, c.NodesKey = nil, "" }},
		{"Keys[0].Path", func(c *pivot.Config) { c.Keys[0].Path = "bad key!" }},
		{"Keys[1].Path", func(c *pivot.Config) { c.Keys[1].Path = "users/1" }},
		{"NodesKey", func(c *pivot.Config) { c.NodesKey = "things" }},
		{"NodesKey", func(c *pivot.Config) { c.NodesKey = "users/*/x"; c.Keys[0].Path = "users/*/*" }},
		{"RoutePrefix", func(c *pivot.Config) { c.RoutePrefix = "/pivot" }},
		{"RoutePrefix", func(c *pivot.Config) { c.RoutePrefix = "pivot~" }},
		{"RoutePrefix", func(c *pivot.Config) { c.RoutePrefix = "/~pivot/" }},
		{"RoutePrefix", func(c *pivot.Config) { c.RoutePrefix = "/~pi vot" }},
		{"Token", func(c *pivot.Config) { c.Token = "two words" }},
		{"ClusterID", func(c *pivot.Config) { c.ClusterID = strings.Repeat("x", 200) }},
		{"Advertise", func(c *pivot.Config) { c.Advertise = "no-port" }},
		{"Advertise", func(c *pivot.Config) { c.Advertise = "host:99999" }},
		{"Advertise", func(c *pivot.Config) { c.Advertise, c.NodesKey = "host:80", "" }},
		{"RequestTimeout", func(c *pivot.Config) { c.RequestTimeout = -time.Second }},
		{"BatchSize", func(c *pivot.Config) { c.BatchSize = -1 }},
		{"MaxBodyBytes", func(c *pivot.Config) { c.MaxBodyBytes = -1 }},
		{"FanOut", func(c *pivot.Config) { c.FanOut = -1 }},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%d_%s", i, tc.field), func(t *testing.T) {
			c := testConfig()
			c.Keys = append([]pivot.Key(nil), c.Keys...)
			tc.change(&c)
			err := c.Validate()
			require.True(t, err != nil, "invalid config accepted")
			require.True(t, errors.Is(err, pivot.ErrInvalidConfig), "wraps ErrInvalidConfig: %v", err)
			require.True(t, strings.Contains(err.Error(), tc.field+":"), "names %s: %v", tc.field, err)
		})
	}
}

func TestSetup_PanicsOnInvalidConfigNamingTheField(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		require.True(t, ok, "panics with an error, got %v", r)
		require.True(t, errors.Is(err, pivot.ErrInvalidConfig) && strings.Contains(err.Error(), "RoutePrefix"), "%v", err)
	}()
	cfg := testConfig()
	cfg.RoutePrefix = "/users"
	pivot.Setup(&ooo.Server{}, cfg)
}

// plainStorage is a Database that cannot replicate.
type plainStorage struct{ ooo.Database }

func TestSetup_RefusesAStorageThatCannotReplicate(t *testing.T) {
	defer func() {
		err, _ := recover().(error)
		require.True(t, errors.Is(err, pivot.ErrInvalidConfig) && strings.Contains(err.Error(), "Keys[0].Database"), "%v", err)
	}()
	cfg := testConfig()
	cfg.Keys[0].Database = plainStorage{}
	pivot.Setup(&ooo.Server{}, cfg)
}

// Setup hooks server.BeforeRead itself, after the program's own hook, so a node's
// reads sync without the program wiring anything, and assigning result.BeforeRead
// afterwards, as older programs do, changes nothing.
func TestSetup_HooksBeforeReadKeepingTheProgramsOwn(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", cfg)
	var seen atomic.Int64
	server := &ooo.Server{Silence: true, Storage: memoryKind.make(t), Pivot: p.addr,
		BeforeRead: func(string) { seen.Add(1) }}
	result := pivot.Setup(server, cfg)
	require.NoError(t, server.Start("127.0.0.1:0"))
	t.Cleanup(func() { server.Close(nil) })
	eventually(t, waitTimeout, func() bool { return result.Status().Keys[0].PivotEpoch != "" }, "the node's first round is done")
	set(t, p, "users/a", `{"a":1}`) // never triggered to the node: it is not registered
	eventually(t, waitTimeout, func() bool {
		raw, err := server.Storage.Get("users/a")
		return err == nil && strings.Contains(string(raw), `"a":1`)
	}, "a read on the node pulls the pivot's write")
	require.Positive(t, seen.Load(), "the program's own BeforeRead still runs")
}

// slowApply delays every push (POST .../apply) by delay before sending it.
type slowApply struct {
	inner http.RoundTripper
	delay time.Duration
}

func (s slowApply) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/apply") {
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return s.inner.RoundTrip(r)
}

// Closing a node's server waits (boundedly) for its unsent writes to reach the pivot,
// and saves its cursors before the storage closes (ooo.Server.OnClosing).
func TestClose_DrainsUnsentWritesBeforeTheStorageCloses(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", cfg)
	ncfg := cfg
	ncfg.Client = &http.Client{Transport: slowApply{inner: http.DefaultTransport, delay: 300 * time.Millisecond}}
	node := startInstance(t, "node", memoryKind.make(t), "", p.addr, ncfg)
	eventually(t, waitTimeout, func() bool { return node.result.Status().Keys[0].PivotEpoch != "" }, "first round done")
	set(t, node, "users/last-words", `{"said":"before closing"}`)
	node.stop() // the push is still held by the slow transport
	require.NotEmpty(t, state(t, p.db, []string{"users/*"}, true)["users/last-words"], "the write reached the pivot before Close returned")
}

// A node's start is quiet: its first round reaches the pivot without a failed round
// and without a warning in the log.
func TestStart_FirstRoundSucceedsWithoutWarnings(t *testing.T) {
	var logs safeBuffer
	cfg := testConfig()
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", cfg)
	ncfg := cfg
	ncfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	node := startInstance(t, "node", memoryKind.make(t), "", p.addr, ncfg)
	eventually(t, waitTimeout, func() bool { return !node.result.Status().LastContact.IsZero() }, "first contact")
	st := node.result.Status()
	require.Equal(t, 0, st.ConsecutiveFailures, "%+v", st)
	require.Empty(t, st.LastError)
	require.Empty(t, logs.String(), "warnings at start")
}

// safeBuffer is a bytes.Buffer safe for concurrent writes (a log sink).
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
