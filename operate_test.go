package pivot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
)

// health GETs the health route of in without any header.
func health(t testing.TB, in *instance) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + in.addr + "/~pivot/health")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// cutNode starts a registered node of c whose link to the pivot can be cut.
func cutNode(t testing.TB, c *cluster, cfg pivot.Config) (*instance, faultLink) {
	t.Helper()
	client, link := newFaultClient()
	cfg.Client = client
	node := startInstance(t, "cut", memoryKind.make(t), "", c.pivot.addr, cfg)
	c.pivot.register(node)
	c.nodes = append(c.nodes, node)
	return node, link
}

func TestHealth_AnswersWithoutHeaders(t *testing.T) {
	cfg := testConfig()
	c := startCluster(t, memoryKind, 0, cfg)
	node, link := cutNode(t, c, cfg)

	code, body := health(t, c.pivot)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"status":"ok"}`+"\n", body)
	eventually(t, waitTimeout, func() bool { code, _ := health(t, node); return code == http.StatusOK }, "node healthy")

	link.set(testcluster.LinkRefused)
	set(t, node, "users/a", `1`)
	eventually(t, waitTimeout, func() bool { code, _ := health(t, node); return code == http.StatusServiceUnavailable }, "node unhealthy")
	_, body = health(t, node)
	var a struct{ Status, Reason string }
	require.NoError(t, json.Unmarshal([]byte(body), &a), body)
	require.Equal(t, "unavailable", a.Status)
	require.Contains(t, a.Reason, "the pivot is unreachable for ")
	require.NotContains(t, body, c.pivot.addr, "health reveals no address")
	require.Equal(t, 1, strings.Count(body, "\n"), "one line")

	link.set(testcluster.LinkUp)
	require.NoError(t, node.result.SyncNow(context.Background()))
	code, _ = health(t, node)
	require.Equal(t, http.StatusOK, code)

	node.stop()
	code, _ = health(t, c.pivot)
	require.Equal(t, http.StatusOK, code, "a node down does not make the pivot unhealthy")
	c.pivot.stop()
}

func TestPending_WaitAcknowledged(t *testing.T) {
	cfg := testConfig()
	c := startCluster(t, memoryKind, 0, cfg)
	node, link := cutNode(t, c, cfg)
	waitConverged(t, c.all(), false)

	link.set(testcluster.LinkRefused)
	before := time.Now()
	for _, k := range []string{"users/a", "users/b", "users/c"} {
		set(t, node, k, `"offline"`)
	}
	var ks pivot.KeyStatus
	for _, k := range node.result.Status().Keys {
		if k.Path == "users/*" {
			ks = k
		}
	}
	require.Equal(t, 3, ks.PendingWrites)
	require.False(t, ks.PendingSince.Before(before.Add(-time.Second)), "since %s", ks.PendingSince)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, node.result.WaitAcknowledged(ctx), context.DeadlineExceeded, "the pivot is cut off")

	link.set(testcluster.LinkUp)
	ctx, cancel = context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(t, node.result.WaitAcknowledged(ctx))
	for _, k := range []string{"users/a", "users/b", "users/c"} {
		require.Equal(t, `"offline"`, get(t, c.pivot, k), "acknowledged means on the pivot")
	}
	for _, k := range node.result.Status().Keys {
		require.Zero(t, k.PendingWrites, k.Path)
	}
	require.NoError(t, c.pivot.result.WaitAcknowledged(ctx), "nothing to wait for on the pivot")
}

func TestResync_OneKey(t *testing.T) {
	cfg := testConfig()
	c := startCluster(t, memoryKind, 1, cfg)
	set(t, c.pivot, "users/a", `1`)
	waitConverged(t, c.all(), false)
	ctx := context.Background()
	require.ErrorIs(t, c.nodes[0].result.Resync(ctx, "nope/*"), pivot.ErrInvalidConfig)
	require.NoError(t, c.nodes[0].result.Resync(ctx, "users/*"))
	ks := c.nodes[0].result.Status().Keys[0]
	require.Empty(t, ks.LastError)
	require.Equal(t, ks.PullCursor, ks.PivotHead, "caught up: the pull cursor is at the pivot's head")
	require.NotZero(t, ks.PivotHead)
	waitConverged(t, c.all(), false)
}

func TestConflict_ReportedOnBothSides(t *testing.T) {
	cfg := testConfig()
	c := startCluster(t, memoryKind, 0, cfg)
	var mu sync.Mutex
	var got []pivot.Conflict
	cfgNode := cfg
	cfgNode.OnConflict = func(x pivot.Conflict) {
		mu.Lock()
		got = append(got, x)
		mu.Unlock()
	}
	node, link := cutNode(t, c, cfgNode)
	waitConverged(t, c.all(), false)

	link.set(testcluster.LinkRefused)
	set(t, node, "settings", `"node, older"`)
	set(t, c.pivot, "settings", `"pivot, newer"`)
	link.set(testcluster.LinkUp)
	require.NoError(t, node.result.SyncNow(context.Background()))
	waitConverged(t, c.all(), false)
	require.Equal(t, `"pivot, newer"`, get(t, node, "settings"))

	ps := c.pivot.result.Status()
	require.EqualValues(t, 1, ps.ConflictsLost)
	require.Len(t, ps.RecentConflicts, 1)
	pc := ps.RecentConflicts[0]
	require.Equal(t, "settings", pc.Key)
	require.Equal(t, `"pivot, newer"`, string(pc.Winner.Data))
	require.Equal(t, `"node, older"`, string(pc.Loser.Data))
	require.Equal(t, pivot.OriginLocal, pc.WinnerFrom)
	require.Equal(t, node.addr, pc.LoserFrom)
	require.Greater(t, pc.Winner.Version(), pc.Loser.Version())

	eventually(t, waitTimeout, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 }, "OnConflict on the node")
	mu.Lock()
	nc := got[0]
	mu.Unlock()
	require.Equal(t, "settings", nc.Key)
	require.Equal(t, pivot.OriginPivot, nc.WinnerFrom)
	require.Equal(t, pivot.OriginLocal, nc.LoserFrom)
	require.Equal(t, `"node, older"`, string(nc.Loser.Data))
	require.EqualValues(t, 1, node.result.Status().ConflictsLost)
	require.EqualValues(t, 1, node.result.Metrics().Conflicts)
}

// logLines is a slog handler target that keeps every line.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestLogs_OneLineDownOneLineUp(t *testing.T) {
	cfg := testConfig()
	c := startCluster(t, memoryKind, 0, cfg)
	lines := &logLines{}
	cfgNode := cfg
	cfgNode.Logger = slog.New(slog.NewTextHandler(lines, &slog.HandlerOptions{Level: slog.LevelInfo}))
	node, link := cutNode(t, c, cfgNode)
	waitConverged(t, c.all(), false)

	link.set(testcluster.LinkRefused)
	set(t, node, "users/a", `1`)
	eventually(t, waitTimeout, func() bool { return node.result.Metrics().FailedRounds >= 5 }, "retries while cut off")
	require.Equal(t, 1, lines.count("pivot unreachable"), "one line for the outage, not one per retry:\n%s", lines)
	require.NotEmpty(t, node.result.Status().Unreachable)
	for _, l := range strings.Split(lines.String(), "\n") {
		require.LessOrEqual(t, strings.Count(l, c.pivot.addr), 1, "the address once: %s", l)
	}

	link.set(testcluster.LinkUp)
	require.NoError(t, node.result.SyncNow(context.Background()))
	require.Equal(t, 1, lines.count("pivot reachable again"), lines.String())
	require.Contains(t, lines.String(), "outage=")
	require.Empty(t, node.result.Status().Unreachable)
}

func TestUI_DataNeedsTheReadToken(t *testing.T) {
	cfg := testConfig()
	open := startCluster(t, memoryKind, 0, cfg)
	cfg.ReadToken = "read-only-for-operators"
	c := startCluster(t, memoryKind, 0, cfg)

	get := func(in *instance, path, bearer string) (int, string, http.Header) {
		req, err := http.NewRequest(http.MethodGet, "http://"+in.addr+"/~pivot"+path, nil)
		require.NoError(t, err)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b), resp.Header
	}
	code, page, h := get(c.pivot, "/ui", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, "<title>pivot status</title>")
	require.NotContains(t, page, c.pivot.addr, "the page itself holds no data")
	require.Contains(t, h.Get("Content-Security-Policy"), "default-src 'none'")

	code, _, _ = get(open.pivot, "/ui/status", "anything")
	require.Equal(t, http.StatusNotFound, code, "off without a ReadToken")
	code, _, _ = get(c.pivot, "/ui/status", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _, _ = get(c.pivot, "/ui/status", cfg.Token)
	require.Equal(t, http.StatusUnauthorized, code, "the cluster Token is not the read token")
	code, body, _ := get(c.pivot, "/ui/status", cfg.ReadToken)
	require.Equal(t, http.StatusOK, code)
	var s pivot.Status
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	require.Equal(t, pivot.RolePivot, s.Role)

	// The read token opens no protocol route.
	code, _, _ = get(c.pivot, "/status", cfg.ReadToken)
	require.NotEqual(t, http.StatusOK, code)
}

func TestHandle_ExtraRoute(t *testing.T) {
	cfg := testConfig()
	c := startCluster(t, memoryKind, 0, cfg)
	require.NoError(t, c.pivot.result.Handle("/hello", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hi")
	})))
	require.True(t, errors.Is(c.pivot.result.Handle("/status", http.NotFoundHandler()), pivot.ErrInvalidConfig))
	require.ErrorIs(t, c.pivot.result.Handle("nope", http.NotFoundHandler()), pivot.ErrInvalidConfig)
	resp, err := http.Get("http://" + c.pivot.addr + "/~pivot/hello")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "hi", string(b))
}
