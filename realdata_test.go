package pivot_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// largeValueConfig is testConfig with a RequestTimeout that lets a body of MaxBodyBytes
// through under the race detector on a loaded machine; a slower link still makes
// progress, in smaller batches (nodeSync.shrink).
func largeValueConfig() pivot.Config {
	cfg := testConfig()
	cfg.RequestTimeout = 10 * time.Second
	return cfg
}

// liveCount is how many live entries db holds under path, read without copying their
// data into strings.
func liveCount(t testing.TB, db ooo.Database, path string) int {
	t.Helper()
	changes, _, err := db.(storage.Replica).Changes(path, 0, 1<<20)
	require.NoError(t, err)
	n := 0
	for _, c := range changes {
		if !c.Deleted {
			n++
		}
	}
	return n
}

// bigValue is a JSON string value of about n bytes.
func bigValue(n int, fill string) string {
	return `"` + strings.Repeat(fill, n/len(fill)) + `"`
}

// Issue 9, case 1: a backlog of large values written while the pivot was down reaches
// it once it is back, in batches that fit MaxBodyBytes (20 × 512 KiB is 10 MiB, more
// than one body).
func TestRealData_BacklogOfLargeValuesReachesThePivot(t *testing.T) {
	cfg := largeValueConfig()
	c := startCluster(t, memoryKind, 2, cfg)
	c.pivot.stop()
	for i := range 20 {
		set(t, c.nodes[0], fmt.Sprintf("users/big%02d", i), bigValue(512<<10, "x"))
	}
	c.pivot = c.pivot.restart(memoryKind)
	c.nodes[0].result.BeforeRead("users/*") // the node learns the pivot is back (it would on its backoff too)
	eventually(t, 4*waitTimeout, func() bool {
		return liveCount(t, c.pivot.db, "users/*") == 20
	}, "the pivot holds the 20 values: %d", liveCount(t, c.pivot.db, "users/*"))
	waitConvergedWithin(t, c.all(), false, 4*waitTimeout)
}

// Issue 9, case 1: a node that joins a pivot holding large values catches up, whether
// they are many (20 × 512 KiB) or each close to the server's limit (3 × 3 MiB).
func TestRealData_NodeJoiningCatchesUpOnLargeValues(t *testing.T) {
	for _, tc := range []struct {
		n, size int
	}{{20, 512 << 10}, {3, 3 << 20}} {
		t.Run(fmt.Sprintf("%dx%dKiB", tc.n, tc.size>>10), func(t *testing.T) {
			cfg := largeValueConfig()
			p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
			for i := range tc.n {
				set(t, p, fmt.Sprintf("users/big%02d", i), bigValue(tc.size, "y"))
			}
			node := startInstance(t, "node", &ooo.MemoryStorage{}, "", p.addr, cfg)
			p.register(node)
			waitConvergedWithin(t, []*instance{p, node}, false, 4*waitTimeout)
			require.Len(t, state(t, node.db, []string{"users/*"}, true), tc.n, "entries on the node")
		})
	}
}

// post writes data to a list over REST and returns the status.
func post(t testing.TB, in *instance, list, data string) int {
	t.Helper()
	resp, err := http.Post("http://"+in.addr+"/"+list, "application/json", strings.NewReader(data))
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode
}

// Issue 9, case 1: a 2 MiB value made only of '<' (six times bigger once escaped)
// replicates, and does not hold back the writes after it in either direction.
func TestRealData_HTMLHeavyValueDoesNotBlockTheNode(t *testing.T) {
	cfg := largeValueConfig()
	c := startCluster(t, memoryKind, 2, cfg)
	a, b := c.nodes[0], c.nodes[1]
	require.Equal(t, http.StatusOK, post(t, a, "users/*", bigValue(2<<20, "<")), "POST of the 2 MiB value")
	set(t, a, "users/small", `{"after":"the big one"}`)
	set(t, c.pivot, "settings", `{"from":"the pivot"}`)
	eventually(t, waitTimeout, func() bool {
		return get(t, b, "users/small") != "" && get(t, a, "settings") != ""
	}, "later writes pass the big one both ways")
	waitConverged(t, c.all(), false)
	for _, in := range c.all() {
		require.Equal(t, "", in.result.Status().LastError, "no sync error on %s", in.name)
	}
}

// realValues are data real applications hold and a JSON encoder may rewrite.
var realValues = []string{
	`{"h":"<b>Tom & Jerry</b>","script":"</script><script>alert(1)</script>"}`,
	`{"ls":"a` + "\u2028" + `b` + "\u2029" + `c"}`,
	`{"text":"naïve café – 東京 – Ελληνικά – 😀"}`,
	`{"big":1e400,"neg":-1E-400}`,
	`{"id":12345678901234567890,"n":-98765432109876543210}`,
	`{"escaped":"\u003c already escaped \u0026 stays so \u003e","quote":"\"\\/"}`,
	strings.Repeat(`{"a":[`, 200) + `"deep"` + strings.Repeat(`]}`, 200),
	`"<>&"`,
	`[1,"<",{"&":">"}]`,
}

// Issue 9, case 2: every replica stores the bytes the writer stored, whatever they
// hold, and the pivot's digest of the path is the same before and after a resync.
func TestRealData_ReplicasHoldTheWritersBytes(t *testing.T) {
	for _, kind := range storageKinds {
		t.Run(kind.name, func(t *testing.T) {
			cfg := testConfig()
			c := startCluster(t, kind, 2, cfg)
			want := map[string]string{}
			for i, in := range c.all() {
				for j, v := range realValues {
					k := fmt.Sprintf("users/%s-%d-%d", in.name, i, j)
					set(t, in, k, v)
					var compact bytes.Buffer
					require.NoError(t, json.Compact(&compact, []byte(v)))
					want[k] = compact.String()
				}
			}
			waitConverged(t, c.all(), false)
			for _, in := range c.all() {
				held := map[string]string{}
				changes, _, err := in.db.(storage.Replica).Changes("users/*", 0, 1000)
				require.NoError(t, err)
				for _, ch := range changes {
					held[ch.Key] = string(ch.Data)
				}
				for k, v := range want {
					require.Equal(t, v, held[k], "bytes of %s on %s", k, in.name)
				}
			}
			// A node's digest equals the pivot's: a fresh node reconciling against the
			// pivot finds nothing to fetch twice and holds the same bytes.
			fresh := startInstance(t, "fresh", kind.make(t), "", c.pivot.addr, cfg)
			waitConverged(t, append(c.all(), fresh), false)
		})
	}
}

// Issue 9, case 6: a since at or past the pivot's head is an empty page that stays at
// since; every numeric parameter is checked the same way.
func TestChanges_SinceAtOrPastTheHead(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	set(t, p, "users/a", `{"a":1}`)
	set(t, p, "users/b", `{"b":2}`)
	for _, since := range []string{"2", "3", "1000", "18446744073709551615"} {
		status, body := call(t, p, http.MethodGet, "/changes", url.Values{"key": {"users/*"}, "since": {since}}, "", nil)
		require.Equal(t, http.StatusOK, status, body)
		var page struct {
			Next    uint64
			More    bool
			Changes []json.RawMessage
		}
		require.NoError(t, json.Unmarshal([]byte(body), &page))
		require.Equal(t, 0, len(page.Changes), "changes after %s: %s", since, body)
		require.True(t, !page.More, "no more after %s", since)
		var s uint64
		_, _ = fmt.Sscan(since, &s)
		require.True(t, page.Next >= s, "next %d is not below since %s", page.Next, since)
	}
	for _, q := range []url.Values{
		{"since": {"-1"}}, {"since": {"18446744073709551616"}}, {"since": {"1e3"}}, {"since": {" 1"}},
		{"limit": {"0"}}, {"limit": {"10001"}}, {"limit": {"-5"}}, {"limit": {"x"}},
		{"bytes": {"0"}}, {"bytes": {"-1"}}, {"bytes": {"9223372036854775808"}}, {"bytes": {"12kb"}},
	} {
		q.Set("key", "users/*")
		status, body := call(t, p, http.MethodGet, "/changes", q, "", nil)
		require.Equal(t, http.StatusBadRequest, status, "%v: %s", q, body)
		require.True(t, strings.Contains(body, "must be an integer in"), "%v: the answer names the range: %s", q, body)
	}
}

// Setup refuses a MaxBodyBytes that could not carry the largest value the server
// accepts, and the synced storages refuse values that could not replicate when they
// are written.
func TestSetup_RefusesBodiesTooSmallForTheServersValues(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 1 << 20
	defer func() {
		err, _ := recover().(error)
		require.True(t, err != nil && strings.Contains(err.Error(), "MaxBodyBytes") && strings.Contains(err.Error(), "server accepts"),
			"Setup panics naming MaxBodyBytes: %v", err)
	}()
	pivot.Setup(&ooo.Server{Storage: &ooo.MemoryStorage{}}, cfg)
	t.Fatal("Setup accepted a MaxBodyBytes below the server's limit")
}

func TestSetup_SyncedStoragesRefuseValuesTooBigToReplicate(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 64<<10 + 32<<10
	db := &ooo.MemoryStorage{}
	p := startServer(t, "pivot", &ooo.Server{Silence: true, Storage: db, MaxBodyBytes: 16 << 10}, "", cfg)
	_, err := p.db.Set("users/huge", json.RawMessage(bigValue(40<<10, "z")))
	require.True(t, err != nil && strings.Contains(err.Error(), "limit"), "the write is refused: %v", err)
	set(t, p, "users/fits", bigValue(30<<10, "z"))
}

// Issue 9, item 1: a key that cannot make progress (here the pivot refuses a value
// bigger than its own MaxBodyBytes) shows its error in its KeyStatus, while its pull
// and the other keys keep syncing both ways.
func TestRealData_AStuckKeyDoesNotHoldBackTheRest(t *testing.T) {
	cfg := largeValueConfig()
	pcfg := cfg
	pcfg.MaxBodyBytes = 64<<10 + 256<<10
	p := startServer(t, "pivot", &ooo.Server{Silence: true, Storage: &ooo.MemoryStorage{}, MaxBodyBytes: 64 << 10}, "", pcfg)
	node := startInstance(t, "node", &ooo.MemoryStorage{}, "", p.addr, cfg)
	p.register(node)
	set(t, node, "users/big", bigValue(1<<20, "b"))
	eventually(t, waitTimeout, func() bool {
		ks := node.result.Status().Keys[0]
		return ks.Path == "users/*" && strings.Contains(ks.LastError, "413")
	}, "users/* reports the refusal: %+v", node.result.Status().Keys)
	set(t, p, "users/from-pivot", `{"p":1}`)
	set(t, p, "settings", `{"s":"pivot"}`)
	eventually(t, waitTimeout, func() bool {
		return get(t, node, "users/from-pivot") != "" && get(t, node, "settings") != ""
	}, "the pivot's writes reach the node")
	set(t, node, "settings", `{"s":"node"}`)
	eventually(t, waitTimeout, func() bool { return get(t, p, "settings") == `{"s":"node"}` }, "the node's other key reaches the pivot")
	require.True(t, node.result.Status().Keys[1].LastError == "", "settings has no error: %+v", node.result.Status().Keys[1])
}
