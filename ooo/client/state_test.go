package client_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/benitogf/pivot/ooo/client"
	"github.com/benitogf/pivot/ooo/meta"
)

// decodes counts the values of type counted decoded by the client.
var decodes atomic.Int64

// counted is a value that counts its own decoding.
type counted struct {
	N int `json:"n"`
}

func (c *counted) UnmarshalJSON(b []byte) error {
	decodes.Add(1)
	var v struct {
		N int `json:"n"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	c.N = v.N
	return nil
}

// TestSubscribe_ListDecodesOnlyWhatChanged: after the first snapshot, each write to a
// list of 300 entries costs the client the decoding of the entry written, and the
// callback still gets the whole list, equal to a fresh read.
func TestSubscribe_ListDecodesOnlyWhatChanged(t *testing.T) {
	s := startServer(t, nil)
	const entries = 300
	for i := 0; i < entries; i++ {
		if _, err := s.Storage.Set(fmt.Sprintf("c/%03d", i), json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	decodes.Store(0)
	r := subscribe[counted](t, s.Address, "c/*", nil)
	if first := r.next(t, "the snapshot"); len(first) != entries {
		t.Fatalf("snapshot of %d entries", len(first))
	}
	if n := decodes.Load(); n != entries {
		t.Fatalf("snapshot decoded %d values, want %d", n, entries)
	}
	decodes.Store(0)
	const writes = 10
	for i := 0; i < writes; i++ {
		if _, err := s.Storage.Set(fmt.Sprintf("c/%03d", i*7), json.RawMessage(fmt.Sprintf(`{"n":%d}`, 1000+i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Storage.Del("c/299"); err != nil {
		t.Fatal(err)
	}
	want := mustList(t, s.Storage, "c/*")
	for {
		got := r.next(t, "the writes")
		if len(got) == len(want) && got[len(got)-1].Index == want[len(want)-1].Index && got[63].Data.N == 1009 {
			for i := range got {
				if got[i].Index != want[i].Index || got[i].Data.N != want[i].Data.N || got[i].Updated != want[i].Updated {
					t.Fatalf("entry %d: %+v, read %+v", i, got[i], want[i])
				}
			}
			break
		}
	}
	if n := decodes.Load(); n != writes {
		t.Fatalf("the writes decoded %d values, want %d (one per entry written)", n, writes)
	}
}

// mustList reads a list from the server's storage, decoded.
func mustList(t *testing.T, s interface{ Get(string) ([]byte, error) }, k string) []client.Meta[counted] {
	t.Helper()
	raw, err := s.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	list, err := meta.DecodeList(raw)
	if err != nil {
		t.Fatal(err)
	}
	decodes.Add(-int64(len(list))) // FromList decodes too
	return client.FromList[counted](list)
}
