package storage

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestMemoryBackend_LogStaysBounded checks that the feed log of a storage that keeps
// rewriting a few keys does not grow with the number of writes.
func TestMemoryBackend_LogStaysBounded(t *testing.T) {
	b := newMemoryBackend(func([]Event) {})
	const keys = 10
	for i := range 20_000 {
		c := Change{Entry: Entry{Key: fmt.Sprintf("k%d", i%keys), Created: int64(i + 1), Data: json.RawMessage(`1`)}}
		if i%7 == 0 {
			c = Change{Entry: Entry{Key: c.Key, Updated: int64(i + 1), Deleted: true}}
		}
		if err := b.put(&c); err != nil {
			t.Fatal(err)
		}
		if len(b.log) > minCompaction+2*len(b.records) {
			t.Fatalf("after %d writes the log holds %d rows for %d records", i+1, len(b.log), len(b.records))
		}
	}
	if err := b.drop("k0"); err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := b.feed(0, func(seq uint64, k string) (bool, error) {
		seen = append(seen, k)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != keys-1 {
		t.Fatalf("feed visits %v, want the %d remaining keys once each", seen, keys-1)
	}
}
