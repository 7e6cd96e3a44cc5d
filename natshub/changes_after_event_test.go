package natshub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot/natshub"
	"github.com/benitogf/pivot/natshub/localcluster"
	"github.com/benitogf/pivot/ooo"
)

// Changes must never return a next past a change it did not return. Read as a pivot
// process reads it (three patterns in turn, each from its own cursor, right after the
// event of a write made by another process), it sometimes returns no change and
// since+1: the change is skipped for good by the node that pulled it, until
// anti-entropy repairs it. Found by examples/hub (a write on one node waited for a
// periodic sync to reach the other). Skipped until natshub's Changes is fixed: run it
// with NATSHUB_REPRO=1.
func TestChanges_NeverSkipsAChangeReadRightAfterItsEvent(t *testing.T) {
	if os.Getenv("NATSHUB_REPRO") == "" {
		t.Skip("known bug in Changes (next past an unreturned change): set NATSHUB_REPRO=1 to run")
	}
	cluster, err := localcluster.Start(t.TempDir(), 3)
	must(t, err)
	t.Cleanup(cluster.Close)
	open := func(name string) *natshub.Storage {
		nc, err := nats.Connect(cluster.URLs())
		must(t, err)
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		st, err := natshub.New(context.Background(), js, natshub.Config{Bucket: "lag", Replicas: 3, Process: name})
		must(t, err)
		must(t, st.Start(ooo.StorageOpt{}))
		t.Cleanup(st.Close)
		return st
	}
	a, b := open("a"), open("b")
	ev := b.Watch()
	since := map[string]uint64{}
	stale := 0
	for i := range 200 {
		k := fmt.Sprintf("users/k%d", i)
		_, err := a.Set(k, json.RawMessage(`1`))
		must(t, err)
		deadline := time.After(5 * time.Second)
	wait:
		for {
			select {
			case e := <-ev:
				if e.Key == k {
					break wait
				}
			case <-deadline:
				t.Fatalf("no event for %s", k)
			}
		}
		found := false
		for _, p := range []string{"users/*", "settings", "things/*"} {
			changes, next, err := b.Changes(p, since[p], 500)
			must(t, err)
			for _, c := range changes {
				if c.Key == k {
					found = true
				}
			}
			if p == "users/*" && !found {
				stale++
				t.Logf("write %d: Changes(%q, %d, 500) returned no change and next %d", i, p, since[p], next)
			}
			since[p] = next
		}
	}
	if stale > 0 {
		t.Fatalf("%d of 200 reads skipped the change just written", stale)
	}
}
