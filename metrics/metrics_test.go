package metrics_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/metrics"
	"github.com/benitogf/pivot/ooo"
)

// waitTimeout bounds every wait: a deadline for failure, not a measurement.
const waitTimeout = 15 * time.Second

// credential is what the scrapes send as their bearer token.
const credential = "scrape-credential"

// cuttable is a transport whose requests fail at once while cut.
type cuttable struct {
	cut   atomic.Bool
	inner http.RoundTripper
}

func (c *cuttable) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errors.New("test: link cut")
	}
	return c.inner.RoundTrip(req)
}

// member is one running instance with its metrics route.
type member struct {
	server *ooo.Server
	result pivot.SetupResult
	addr   string
}

func start(t *testing.T, pivotAddr string, client *http.Client) *member {
	t.Helper()
	server := &ooo.Server{Silence: true, Storage: &ooo.MemoryStorage{}, Pivot: pivotAddr}
	result := pivot.Setup(server, pivot.Config{
		Keys:         []pivot.Key{{Path: "users/*"}, {Path: "settings"}},
		NodesKey:     "things/*",
		Token:        "cluster-secret-for-tests",
		SyncInterval: -1,
		BackoffMin:   2 * time.Millisecond,
		BackoffMax:   50 * time.Millisecond,
		Client:       client,
	})
	require.NoError(t, result.Handle("/metrics", metrics.Handler(result, credential)))
	require.NoError(t, server.Start("127.0.0.1:0"))
	m := &member{server: server, result: result, addr: server.Address}
	t.Cleanup(m.stop)
	return m
}

func (m *member) stop() { m.server.Close(os.Interrupt) }

func (m *member) set(t *testing.T, k, data string) {
	t.Helper()
	_, err := m.server.Storage.Set(k, json.RawMessage(data))
	require.NoError(t, err)
}

// scrape reads the instance's metrics: series (name with labels) → value.
func (m *member) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+m.addr+"/~pivot/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+credential)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	require.NoError(t, sc.Err())
	return out
}

// until polls the instance's metrics until cond holds on them.
func (m *member) until(t *testing.T, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		s := m.scrape(t)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: %s; metrics:\n%v", waitTimeout, what, pivotSeries(s))
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// pivotSeries lists the pivot_ series, sorted, without histogram buckets.
func pivotSeries(s map[string]float64) string {
	var keys []string
	for k := range s {
		if strings.HasPrefix(k, "pivot_") && !strings.Contains(k, "_bucket{") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %v\n", k, s[k])
	}
	return b.String()
}

func register(t *testing.T, hub *member, node *member) {
	t.Helper()
	id := strings.NewReplacer(".", "-", ":", "-").Replace(node.addr)
	hub.set(t, "things/"+id, fmt.Sprintf(`{"ip":%q}`, node.addr))
}

func TestCollector_CountersMoveWithWritesConflictsAndOutages(t *testing.T) {
	hub := start(t, "", nil)
	link := &cuttable{inner: ooo.NewClient().Transport}
	a := start(t, hub.addr, &http.Client{Transport: link})
	b := start(t, hub.addr, nil)
	register(t, hub, a)
	register(t, hub, b)
	nodeB := fmt.Sprintf(`{node=%q}`, b.addr)

	req, err := http.NewRequest(http.MethodGet, "http://"+a.addr+"/~pivot/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no credential, no series")

	// Writes: pushed on A, triggers sent by the pivot, pulled on B.
	first := a.scrape(t)
	require.Equal(t, 1.0, first[`pivot_info{cluster="",role="node"}`])
	for i := 0; i < 5; i++ {
		a.set(t, fmt.Sprintf("users/u%d", i), fmt.Sprint(i))
	}
	a.until(t, "A's pushes acknowledged", func(s map[string]float64) bool {
		return s["pivot_pushed_entries_total"] >= first["pivot_pushed_entries_total"]+5 &&
			s["pivot_write_ack_duration_seconds_count"] >= 5 && s["pivot_pushed_bytes_total"] > 0 &&
			s[`pivot_sync_rounds_total{result="ok"}`] > 0 && s["pivot_pivot_up"] == 1
	})
	b.until(t, "B pulled A's writes", func(s map[string]float64) bool { return s["pivot_pulled_entries_total"] >= 5 })
	hub.until(t, "the pivot triggered B", func(s map[string]float64) bool {
		return s[`pivot_triggers_total{result="sent"}`] > 0 && s["pivot_node_up"+nodeB] == 1
	})

	// A conflict: A writes while cut off, the pivot writes later; A's write loses,
	// on the pivot (as pushed) and on A (as replaced).
	link.cut.Store(true)
	a.set(t, "settings", `"older, on A"`)
	hub.set(t, "settings", `"newer, on the pivot"`)
	a.until(t, "A counts its unacknowledged write", func(s map[string]float64) bool {
		return s[`pivot_pending_writes{key="settings"}`] == 1 && s[`pivot_pending_oldest_age_seconds{key="settings"}`] > 0 &&
			// The failed round counts its first exchange that got no answer: the
			// push of settings, or a pull of a key synced before it.
			s["pivot_pivot_up"] == 0 && s[`pivot_sync_rounds_total{result="failed"}`] > 0 &&
			s["pivot_push_failures_total"]+s["pivot_pull_failures_total"] > 0
	})
	link.cut.Store(false)
	require.NoError(t, a.result.SyncNow(context.Background()))
	hub.until(t, "the pivot counts the conflict", func(s map[string]float64) bool { return s["pivot_conflicts_total"] == 1 })
	a.until(t, "A counts the conflict", func(s map[string]float64) bool {
		return s["pivot_conflicts_total"] == 1 && s[`pivot_pending_writes{key="settings"}`] == 0 && s["pivot_pivot_up"] == 1
	})

	// An outage of B: the pivot's trigger fails and B shows down.
	before := hub.scrape(t)
	b.stop()
	hub.set(t, "users/after", `"B is down"`)
	final := hub.until(t, "the pivot sees B down", func(s map[string]float64) bool {
		return s["pivot_node_up"+nodeB] == 0 && s[`pivot_triggers_total{result="failed"}`] > before[`pivot_triggers_total{result="failed"}`]
	})
	t.Logf("the pivot's series at the end:\n%s", pivotSeries(final))
	t.Logf("node A's series at the end:\n%s", pivotSeries(a.scrape(t)))
}
