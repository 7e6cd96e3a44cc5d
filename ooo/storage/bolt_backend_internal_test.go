package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestBoltBackend_FailedBatchMember checks the group commit's fallback: when one write
// of a batch makes the transaction fail, the others are committed on their own, with
// their events, and only the failing one reports the failure.
func TestBoltBackend_FailedBatchMember(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "b.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := initBolt(db); err != nil {
		t.Fatal(err)
	}
	var published []Event
	b := newBoltBackend(db, func(evs []Event) { published = append(published, evs...) })
	defer func() {
		if err := b.close(); err != nil {
			t.Error(err)
		}
	}()

	boom := errors.New("boom")
	var batch []*boltRequest
	for i := range 5 {
		k := fmt.Sprintf("k%d", i)
		batch = append(batch, &boltRequest{done: make(chan struct{}), fn: func(w writer) error {
			c := Change{Entry: Entry{Key: k, Created: int64(i + 1), Data: json.RawMessage(`1`)}}
			if err := w.put(&c); err != nil {
				return err
			}
			w.emit(Event{Key: k, Operation: OpSet})
			if i == 2 {
				return w.(*boltWriter).check(boom)
			}
			return nil
		}})
	}
	b.commit(batch)

	for i, req := range batch {
		<-req.done
		if i == 2 {
			if !errors.Is(req.fail, boom) {
				t.Fatalf("failing write reported %v", req.fail)
			}
			continue
		}
		if req.fail != nil || req.result != nil {
			t.Fatalf("write %d: fail %v, result %v", i, req.fail, req.result)
		}
	}
	var keys []string
	err = b.view(func(r reader) error {
		return r.feed(0, func(seq uint64, k string) (bool, error) {
			keys = append(keys, fmt.Sprintf("%d:%s", seq, k))
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(keys), "[1:k0 2:k1 3:k3 4:k4]"; got != want {
		t.Fatalf("committed %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(published), "[{k0 set <nil>} {k1 set <nil>} {k3 set <nil>} {k4 set <nil>}]"; got != want {
		t.Fatalf("published %s, want %s", got, want)
	}
}
