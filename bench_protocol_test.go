package pivot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// The hot paths of the pivot protocol, measured over loopback HTTP against a real pivot:
// encoding a batch, applying a pushed batch, and reading the change feed. The routes and
// bodies are the wire protocol (see protocol.go); these benchmarks speak it as a node
// does. Run with: go test -run '^$' -bench 'Protocol|Batch' .

// protocolBatch is the batch size of the push and pull benchmarks: pivot's default.
const protocolBatch = pivot.DefaultBatchSize

// protocolToken and protocolCluster identify the benchmark pivot's cluster.
const (
	protocolToken   = "bench-token"
	protocolCluster = "bench"
)

// protocolPivot is a pivot started for a protocol benchmark.
type protocolPivot struct {
	base   string // http://host:port + route prefix
	rep    storage.Replica
	client *http.Client
}

// startProtocolPivot starts a pivot syncing users/* on db, holding size entries.
func startProtocolPivot(b *testing.B, db ooo.Database, size int) *protocolPivot {
	b.Helper()
	server := &ooo.Server{Silence: true, Storage: db}
	result := pivot.Setup(server, pivot.Config{
		Keys:         []pivot.Key{{Path: "users/*"}},
		Token:        protocolToken,
		ClusterID:    protocolCluster,
		SyncInterval: -1,
	})
	if err := server.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		server.Close(os.Interrupt)
		result.Close()
	})
	rep := db.(storage.Replica)
	base := rep.Clock().Now() - int64(size)
	for start := 0; start < size; start += 5000 {
		var entries []storage.Entry
		for i := start; i < min(start+5000, size); i++ {
			entries = append(entries, storage.Entry{Key: fmt.Sprintf("users/%08d", i), Created: base + int64(i),
				Data: json.RawMessage(fmt.Sprintf(`{"name":"user number %d","email":"user%d@example.test"}`, i, i))})
		}
		if _, err := rep.Apply(entries, pivot.Wins); err != nil {
			b.Fatal(err)
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	b.Cleanup(t.CloseIdleConnections)
	return &protocolPivot{base: "http://" + server.Address + pivot.DefaultRoutePrefix, rep: rep, client: &http.Client{Transport: t}}
}

// call sends one protocol request and decodes the JSON answer into out.
func (p *protocolPivot) call(b *testing.B, method, route string, body []byte, out any) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, p.base+route, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	if err := pivot.SignRequest(req, body, pivot.Config{Token: protocolToken, ClusterID: protocolCluster}); err != nil {
		b.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s %s: %s: %s", method, route, resp.Status, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		b.Fatal(err)
	}
}

// freshBatch returns protocolBatch entries of users/*, stamped now by clk, so each one
// wins over what the pivot holds.
func freshBatch(rep storage.Replica, round int) []storage.Entry {
	clk := rep.Clock()
	entries := make([]storage.Entry, protocolBatch)
	for j := range entries {
		entries[j] = storage.Entry{Key: fmt.Sprintf("users/push-%04d", j), Created: clk.Now(),
			Data: json.RawMessage(fmt.Sprintf(`{"name":"pushed %d","round":%d}`, j, round))}
	}
	return entries
}

// BenchmarkBatch_Encode measures encoding a push body of protocolBatch entries and
// decoding it back, the JSON work on both ends of every batch.
func BenchmarkBatch_Encode(b *testing.B) {
	db := &ooo.MemoryStorage{}
	if err := db.Start(ooo.StorageOpt{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	entries := freshBatch(db, 0)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(map[string]any{"entries": entries}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*protocolBatch)/b.Elapsed().Seconds(), "entries/s")
	})
	raw, err := json.Marshal(map[string]any{"entries": entries})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var body struct {
				Entries []storage.Entry `json:"entries"`
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*protocolBatch)/b.Elapsed().Seconds(), "entries/s")
	})
}

// BenchmarkProtocol_Apply measures a push: encoding a batch of protocolBatch entries,
// POST apply over loopback, and the pivot decoding, validating and applying it under LWW
// (every entry wins), on MemoryStorage and on BoltStorage.
func BenchmarkProtocol_Apply(b *testing.B) {
	kinds := []struct {
		name string
		make func(b *testing.B) ooo.Database
	}{
		{"memory", func(*testing.B) ooo.Database { return &ooo.MemoryStorage{} }},
		{"bolt", func(b *testing.B) ooo.Database {
			return &ooo.BoltStorage{Path: filepath.Join(b.TempDir(), "pivot.db")}
		}},
	}
	for _, kind := range kinds {
		b.Run(kind.name, func(b *testing.B) {
			p := startProtocolPivot(b, kind.make(b), 0)
			round := 0
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				entries := freshBatch(p.rep, round)
				round++
				b.StartTimer()
				body, err := json.Marshal(map[string]any{"entries": entries})
				if err != nil {
					b.Fatal(err)
				}
				var resp struct {
					Applied int `json:"applied"`
				}
				p.call(b, http.MethodPost, "/apply?key=users/*", body, &resp)
				if resp.Applied != protocolBatch {
					b.Fatalf("applied %d of %d", resp.Applied, protocolBatch)
				}
			}
			b.ReportMetric(float64(b.N*protocolBatch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkProtocol_Changes measures a pull: GET changes over loopback for one change
// and for a full batch, from a pivot holding 1k and 100k entries, decoded as a node
// does. The cost must not grow with the entries held.
func BenchmarkProtocol_Changes(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		p := startProtocolPivot(b, &ooo.MemoryStorage{}, size)
		for _, limit := range []int{1, protocolBatch} {
			b.Run(fmt.Sprintf("entries=%d/limit=%d", size, limit), func(b *testing.B) {
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					since := uint64(i*limit) % uint64(size-limit)
					i++
					var resp struct {
						Next    uint64           `json:"next"`
						Changes []storage.Change `json:"changes"`
					}
					p.call(b, http.MethodGet, fmt.Sprintf("/changes?key=users/*&since=%d&limit=%d", since, limit), nil, &resp)
					if len(resp.Changes) != limit {
						b.Fatalf("got %d changes, want %d", len(resp.Changes), limit)
					}
				}
				b.ReportMetric(float64(b.N*limit)/b.Elapsed().Seconds(), "entries/s")
			})
		}
	}
}
