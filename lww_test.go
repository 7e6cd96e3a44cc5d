package pivot_test

import (
	"encoding/json"
	"math/rand"
	"testing"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/storage"
)

func write(key string, created, updated int64, data string) storage.Entry {
	return storage.Entry{Key: key, Created: created, Updated: updated, Data: json.RawMessage(data)}
}

func tombstone(key string, at int64) storage.Entry {
	return storage.Entry{Key: key, Updated: at, Deleted: true}
}

func TestWins(t *testing.T) {
	cases := []struct {
		name     string
		incoming storage.Entry
		current  storage.Entry
		want     bool
	}{
		{"newer write beats older write", write("a", 1, 5, `1`), write("a", 1, 4, `2`), true},
		{"older write loses to newer write", write("a", 1, 4, `2`), write("a", 1, 5, `1`), false},
		{"created counts when updated is zero", write("a", 7, 0, `1`), write("a", 1, 6, `1`), true},
		{"any write beats a never seen key", write("a", 1, 0, `1`), storage.Entry{}, true},
		{"delete beats older write", tombstone("a", 9), write("a", 1, 8, `1`), true},
		{"older delete loses to newer write", tombstone("a", 7), write("a", 1, 8, `1`), false},
		{"newer write beats delete", write("a", 10, 0, `1`), tombstone("a", 9), true},
		{"delete beats write on equal version", tombstone("a", 8), write("a", 1, 8, `1`), true},
		{"write loses to delete on equal version", write("a", 1, 8, `1`), tombstone("a", 8), false},
		{"larger data wins a tie", write("a", 1, 8, `"b"`), write("a", 1, 8, `"a"`), true},
		{"smaller data loses a tie", write("a", 1, 8, `"a"`), write("a", 1, 8, `"b"`), false},
		{"identical write is not applied", write("a", 1, 8, `1`), write("a", 1, 8, `1`), false},
		{"identical delete is not applied", tombstone("a", 8), tombstone("a", 8), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := pivot.Wins(tc.incoming, tc.current); got != tc.want {
				t.Fatalf("Wins(%+v, %+v) = %v, want %v", tc.incoming, tc.current, got, tc.want)
			}
		})
	}
}

// TestWins_OrderIndependent applies random sets of conflicting changes in many orders
// and checks that every order leaves the same winner per key.
func TestWins_OrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 500; round++ {
		var changes []storage.Entry
		for i := 0; i < 2+rng.Intn(8); i++ {
			k := string(rune('a' + rng.Intn(3)))
			v := int64(1 + rng.Intn(4)) // few versions, so ties are common
			if rng.Intn(3) == 0 {
				changes = append(changes, tombstone(k, v))
			} else {
				changes = append(changes, write(k, v, 0, []string{`1`, `2`, `"x"`}[rng.Intn(3)]))
			}
		}
		want := applyAll(changes)
		for perm := 0; perm < 10; perm++ {
			shuffled := append([]storage.Entry(nil), changes...)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			got := applyAll(shuffled)
			if len(got) != len(want) {
				t.Fatalf("round %d: %d keys, want %d", round, len(got), len(want))
			}
			for k, w := range want {
				g := got[k]
				if g.Version() != w.Version() || g.Deleted != w.Deleted || string(g.Data) != string(w.Data) {
					t.Fatalf("round %d key %s: got %+v, want %+v (changes %+v)", round, k, g, w, changes)
				}
			}
		}
	}
}

func applyAll(changes []storage.Entry) map[string]storage.Entry {
	state := map[string]storage.Entry{}
	for _, c := range changes {
		if pivot.Wins(c, state[c.Key]) {
			state[c.Key] = c
		}
	}
	return state
}
