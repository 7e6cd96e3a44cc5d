package pivot_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// pullRecord is one pull a node made, as seen by its client.
type pullRecord struct {
	compressed bool  // the answer travelled gzip-compressed
	wire       int64 // bytes read from the connection for it: status line, headers, body
	body       int   // bytes of the answer decompressed (as pivot reads it)
	status     int
}

// wireClient is a node's HTTP client that counts the bytes read from its connections
// and records each pull. The node makes one request at a time, so the bytes read
// between a request and the end of its answer are that answer's.
type wireClient struct {
	read atomic.Int64
	// askGzip makes the client set Accept-Encoding itself, so Go's transport leaves
	// the answer compressed and pivot has to decompress it.
	askGzip bool
	inner   *http.Transport

	mu    sync.Mutex
	pulls []pullRecord
}

func newWireClient(askGzip bool) *wireClient {
	c := &wireClient{askGzip: askGzip}
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	c.inner = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &readCounter{Conn: conn, n: &c.read}, nil
	}}
	return c
}

func (c *wireClient) client() *http.Client { return &http.Client{Transport: c} }

func (c *wireClient) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.askGzip {
		req = req.Clone(req.Context())
		req.Header.Set("Accept-Encoding", "gzip")
	}
	before := c.read.Load()
	resp, err := c.inner.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/changes") {
		return resp, err
	}
	// Read the answer here (decompressed by the transport or not, as pivot will get
	// it) to count the bytes the connection carried for it.
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	compressed := resp.Uncompressed || resp.Header.Get("Content-Encoding") == "gzip"
	rec := pullRecord{compressed: compressed, wire: c.read.Load() - before, body: len(raw), status: resp.StatusCode}
	if !resp.Uncompressed && compressed { // still compressed: pivot decompresses it
		zr, err := gzip.NewReader(strings.NewReader(string(raw)))
		if err != nil {
			return nil, err
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			return nil, err
		}
		rec.body = len(plain)
	}
	c.mu.Lock()
	c.pulls = append(c.pulls, rec)
	c.mu.Unlock()
	resp.Body = io.NopCloser(strings.NewReader(string(raw)))
	return resp, nil
}

// recorded returns the pulls so far.
func (c *wireClient) recorded() []pullRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]pullRecord(nil), c.pulls...)
}

// readCounter counts the bytes read from a connection.
type readCounter struct {
	net.Conn
	n *atomic.Int64
}

func (r *readCounter) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// preloadUsers writes n entries of about 150 bytes of data under users/ on in.
func preloadUsers(t testing.TB, db ooo.Database, n int) {
	t.Helper()
	for i := range n {
		data := fmt.Sprintf(`{"name":"user number %d","email":"user%d@example.test","roles":["reader","writer"],"city":"Springfield","active":true}`, i, i)
		_, err := db.Set(fmt.Sprintf("users/u%04d", i), json.RawMessage(data))
		require.NoError(t, err)
	}
}

func TestChanges_LargeAnswersAreCompressed(t *testing.T) {
	for _, mode := range []struct {
		name    string
		askGzip bool
	}{
		{"the transport decompresses", false},
		{"pivot decompresses", true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ReadBudget = -1
			p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
			preloadUsers(t, p.db, 400) // one page of about 80 kB of JSON
			wc := newWireClient(mode.askGzip)
			ncfg := cfg
			ncfg.Client = wc.client()
			node := startInstance(t, "node", &ooo.MemoryStorage{}, "", p.addr, ncfg)
			p.register(node)

			// The first sync fetches the whole collection in one large answer.
			waitConverged(t, []*instance{p, node}, false)
			var large *pullRecord
			for _, r := range wc.recorded() {
				if r.compressed {
					large = &r
					break
				}
			}
			if large == nil {
				t.Fatalf("no pull answer was compressed: %+v", wc.recorded())
			}
			require.Equal(t, http.StatusOK, large.status)
			t.Logf("page of 400 entries: %d bytes on the wire, %d decompressed", large.wire, large.body)
			require.True(t, large.body > 64<<10, "the page decompressed: %d bytes", large.body)
			require.True(t, large.wire*4 < int64(large.body), "on the wire, %d bytes for %d of JSON: at least 4× smaller", large.wire, large.body)

			// A single change is a small answer: sent as it is.
			before := len(wc.recorded())
			set(t, p, "users/one-more", `{"name":"one more"}`)
			eventually(t, waitTimeout, func() bool {
				return state(t, node.db, []string{"users/*"}, true)["users/one-more"] != ""
			}, "the node pulls the new entry")
			small := wc.recorded()[before:]
			require.True(t, len(small) > 0, "the node pulled")
			for _, r := range small {
				require.True(t, !r.compressed, "a small answer is not compressed: %+v", r)
				require.True(t, r.wire > int64(r.body), "a plain answer carries its body and headers: %+v", r)
			}
			waitConverged(t, []*instance{p, node}, false)
		})
	}
}

// A node whose MaxBodyBytes is smaller than a page of the pivot's feed asks for pages
// that fit (the bytes parameter) and catches up; no answer it reads is over its limit,
// compressed or not.
func TestChanges_PagesFitTheNodesMaxBodyBytes(t *testing.T) {
	for _, askGzip := range []bool{false, true} {
		t.Run(fmt.Sprint("askGzip=", askGzip), func(t *testing.T) {
			cfg := testConfig()
			cfg.ReadBudget = -1
			p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
			preloadUsers(t, p.db, 400)
			wc := newWireClient(askGzip)
			ncfg := cfg
			ncfg.Client = wc.client()
			ncfg.MaxBodyBytes = 64<<10 + 16<<10 // 16 KiB of entries a page: a tenth of the feed
			node := startServer(t, "node", &ooo.Server{Silence: true, Storage: &ooo.MemoryStorage{}, Pivot: p.addr, MaxBodyBytes: 8 << 10}, "", ncfg)
			eventually(t, waitTimeout, func() bool {
				return len(state(t, node.db, []string{"users/*"}, false)) == 400
			}, "the node holds the 400 entries: %d", len(state(t, node.db, []string{"users/*"}, false)))
			pages := 0
			for _, r := range wc.recorded() {
				require.True(t, r.body <= int(ncfg.MaxBodyBytes), "an answer within the node's limit: %+v", r)
				if r.body > 8<<10 {
					pages++
				}
			}
			require.True(t, pages >= 4, "the feed came in several pages: %d", pages)
			waitConverged(t, []*instance{p, node}, false)
		})
	}
}

// A peer that answers more than MaxBodyBytes (here a small gzip body that expands past
// it) is refused by its decompressed size, and nothing of it is applied.
func TestChanges_MaxBodyBytesBoundsTheDecompressedAnswer(t *testing.T) {
	page := `{"epoch":"e","horizon":0,"next":1,"more":false,"changes":[{"key":"users/big","created":1,"updated":0,"data":"` +
		strings.Repeat("a", 1<<20) + `","seq":1}]}`
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(page))
	require.NoError(t, zw.Close())
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/changes") {
			http.Error(w, `{"error":"no","code":"not_found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(zipped.Bytes())
	}))
	defer fake.Close()
	require.True(t, zipped.Len() < 16<<10, "the answer is small on the wire: %d bytes", zipped.Len())
	cfg := testConfig()
	cfg.ReadBudget = -1
	cfg.MaxBodyBytes = 64<<10 + 256<<10
	node := startServer(t, "node", &ooo.Server{Silence: true, Storage: &ooo.MemoryStorage{}, Pivot: fake.URL, MaxBodyBytes: 64 << 10}, "", cfg)
	eventually(t, waitTimeout, func() bool {
		return strings.Contains(node.result.Status().LastError, "answer exceeds MaxBodyBytes")
	}, "the node refuses the answer: %q", node.result.Status().LastError)
	require.Len(t, state(t, node.db, []string{"users/*"}, false), 0, "entries on the node")
}

// The gzip answers are ordinary HTTP: a client that asks for them gets a valid gzip
// body, one that does not gets plain JSON.
func TestChanges_ContentEncodingFollowsAcceptEncoding(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	preloadUsers(t, p.db, 400)
	// DisableCompression: the transport neither asks for gzip nor decodes it.
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	var decoded []storage.Change
	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"gzip", true},
		{"deflate, gzip;q=0.5", true},
		{"*", true},
		{"gzip;q=0", false},
		{"identity", false},
		{"", false},
	} {
		req, err := http.NewRequest(http.MethodGet, "http://"+p.addr+pivot.DefaultRoutePrefix+"/changes?key=users/*&since=0", nil)
		require.NoError(t, err)
		require.NoError(t, pivot.SignRequest(req, nil, cfg))
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		body := io.Reader(resp.Body)
		require.Equal(t, tc.gzip, resp.Header.Get("Content-Encoding") == "gzip", "Accept-Encoding %q", tc.accept)
		if tc.gzip {
			zr, err := gzip.NewReader(resp.Body)
			require.NoError(t, err)
			body = zr
		}
		var answer struct{ Changes []storage.Change }
		require.NoError(t, json.NewDecoder(body).Decode(&answer), "Accept-Encoding %q", tc.accept)
		resp.Body.Close()
		require.Equal(t, 400, len(answer.Changes), "Accept-Encoding %q", tc.accept)
		if decoded != nil {
			require.Equal(t, fmt.Sprint(decoded), fmt.Sprint(answer.Changes), "the same answer either way")
		}
		decoded = answer.Changes
	}
}
