package chaos_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo/storage"
)

// The checker's own tests: each invariant is shown to fail on a history or a cluster
// that breaks it, so a passing soak means something.

func TestChecker_History(t *testing.T) {
	w1 := storage.Entry{Key: "items/a", Created: 100, Data: []byte(`{"v":1}`)}
	w2 := storage.Entry{Key: "items/a", Created: 100, Updated: 200, Data: []byte(`{"v":2}`)}
	del := storage.Entry{Key: "items/a", Updated: 300, Deleted: true}
	again := storage.Entry{Key: "items/a", Created: 400, Data: []byte(`{"v":3}`)}
	ack := func(step int, e storage.Entry) *record {
		return &record{step: step, inst: "node1", kind: opSet, key: e.Key, out: outAck, effects: []storage.Entry{e}}
	}
	final := func(es ...storage.Entry) map[string]storage.Entry {
		out := map[string]storage.Entry{}
		for _, e := range es {
			out[e.Key] = e
		}
		return out
	}
	cases := []struct {
		name    string
		records []*record
		final   map[string]storage.Entry
		want    string // prefix of a violation expected, "" for none
	}{
		{"the last write is there", []*record{ack(1, w1), ack(2, w2)}, final(w2), ""},
		{"a write beaten by a later one", []*record{ack(1, w2), ack(2, w1)}, final(w2), ""},
		{"a write beaten by a delete", []*record{ack(1, w1), ack(2, del)}, final(del), ""},
		{"a re-creation after a delete", []*record{ack(1, w1), ack(2, del), ack(3, again)}, final(again), ""},
		{"an acknowledged write lost", []*record{ack(1, w1), ack(2, w2)}, final(w1), "B: step 2 acknowledged write lost"},
		{"an acknowledged write missing", []*record{ack(1, w1)}, final(), "B: step 1 acknowledged write lost"},
		{"an invented entry", []*record{ack(1, w1)}, final(storage.Entry{Key: "items/a", Created: 900, Data: []byte(`{}`)}), "B: final"},
		{"a resurrection", []*record{{step: 1, out: outNoop}, ack(2, del), {step: 3, kind: opSet, out: outNoop, effects: []storage.Entry{w2}}}, final(w2), "C: items/a resurrected"},
		{"a failed operation", []*record{{step: 1, inst: "node1", kind: opGet, out: outFailed, err: "boom"}}, final(), "D: step 1 failed"},
		{"a stalled operation", []*record{{step: 1, inst: "node1", kind: opGet, out: outAck, latency: 2 * stallLimit}}, final(), "D: step 1 stalled"},
		{"a write beaten at once", []*record{{step: 1, kind: opSet, key: "items/a", out: outAck, beatenBy: []storage.Entry{w2}}}, final(w2), ""},
		{"the write that beat one at once lost", []*record{{step: 1, kind: opSet, key: "items/a", out: outAck, beatenBy: []storage.Entry{w2}}, ack(2, w1)}, final(w1), "B: step 1: the entry that beat this write was lost"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := checkHistory(tc.records, tc.final)
			found := false
			for _, v := range got {
				found = found || strings.HasPrefix(v, tc.want)
			}
			switch {
			case tc.want == "" && len(got) > 0:
				t.Fatalf("unexpected violations: %q", got)
			case tc.want != "" && !found:
				t.Fatalf("want a violation starting %q, got %q", tc.want, got)
			}
		})
	}
}

// A pivot that acknowledges pushes without applying them loses data: the checker must
// see the replicas never converge and the acknowledged write missing from the pivot.
func TestChecker_CatchesALyingPivot(t *testing.T) {
	c, mo := scripted(t, 1)
	node := c.members[1]
	mustConverge(t, c, mo, 5*time.Second)
	c.net.Update(node.name, c.pivot().name, func(l *testcluster.Link) { l.Lie = 1000 })
	d := newDriver(c, 1)
	spec := opSpec{m: node, kind: opSet, path: pathItems, key: "items/lost", data: []byte(`{"v":1}`)}
	rec := d.exec(spec)
	if rec.out != outAck {
		t.Fatalf("the write was not acknowledged: %s", rec)
	}
	if _, err := awaitConvergence(c, mo, time.Now().Add(time.Second)); !errors.Is(err, errNotConverged) {
		t.Fatalf("want errNotConverged, got %v", err)
	}
	final, err := fullState(c.pivot())
	if err != nil {
		t.Fatal(err)
	}
	got := checkHistory([]*record{rec}, final)
	if len(got) != 1 || !strings.HasPrefix(got[0], "B: step 0 acknowledged write lost") {
		t.Fatalf("want the lost write reported, got %q", got)
	}
}

// A replica whose key goes back to an older state breaks invariant E.
func TestChecker_CatchesAReplicaMovingBackwards(t *testing.T) {
	c, mo := scripted(t, 1)
	node := c.members[1]
	if _, err := node.main.Set(pathSettings, []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := mo.observe(node); err != nil {
		t.Fatal(err)
	}
	// SetWithMeta stores the stamps it is given: here, older ones.
	if _, err := node.main.SetWithMeta(pathSettings, []byte(`{"v":1}`), 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := mo.observe(node); err != nil {
		t.Fatal(err)
	}
	if len(mo.violations) != 1 || !strings.HasPrefix(mo.violations[0], "E: settings moved backwards on node1") {
		t.Fatalf("want one E violation, got %q", mo.violations)
	}
}

// The data checks: POSTs that share a key, a POST missing from posts/*, and altered
// values that are not repaired, or whose altered bytes spread.
func TestChecker_Data(t *testing.T) {
	post := func(step int, inst string, e storage.Entry) *record {
		return &record{step: step, inst: inst, kind: opPost, key: e.Key, out: outAck, effects: []storage.Entry{e}}
	}
	p1 := storage.Entry{Key: "posts/a1", Created: 100, Data: []byte(`{"v":1}`)}
	p2 := storage.Entry{Key: "posts/a1", Created: 100, Data: []byte(`{"v":2}`)}
	orig := storage.Entry{Key: "items/x", Created: 100, Data: []byte(`{"n":17}`)}
	later := storage.Entry{Key: "items/x", Created: 100, Updated: 300, Data: []byte(`{"n":1}`)}
	altered := storage.Entry{Key: "items/x", Created: 100, Data: []byte(`{"n":18}`)}
	dmg := []*damage{{step: 3, member: "node1", original: orig, altered: altered.Data}}
	state := func(es ...storage.Entry) map[string]storage.Entry {
		out := map[string]storage.Entry{}
		for _, e := range es {
			out[e.Key] = e
		}
		return out
	}
	cases := []struct {
		name    string
		records []*record
		damages []*damage
		final   map[string]storage.Entry
		want    string
	}{
		{"a POST in place", []*record{post(1, "node1", p1)}, nil, state(p1), ""},
		{"two POSTs on one key", []*record{post(1, "node1", p1), post(2, "node2", p2)}, nil, state(p2), "B: two acknowledged POSTs"},
		{"a POST replaced", []*record{post(1, "node1", p1)}, nil, state(p2), "B: step 1 acknowledged POST not in the final state"},
		{"a POST missing", []*record{post(1, "node1", p1)}, nil, state(), "B: step 1 acknowledged POST not in the final state"},
		{"damage repaired", nil, dmg, state(orig), ""},
		{"damage overwritten by a later write", nil, dmg, state(later), ""},
		{"damage spread", nil, dmg, state(altered), "damage: the value of items/x altered"},
		{"damage read as absent for good", nil, dmg, state(), "damage: items/x altered on node1's disk at step 3 is not repaired"},
		{"damage lost with a wiped disk", nil, []*damage{{original: orig, altered: altered.Data, lost: true}}, state(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := checkData(tc.records, tc.damages, tc.final)
			found := false
			for _, v := range got {
				found = found || strings.HasPrefix(v, tc.want)
			}
			switch {
			case tc.want == "" && len(got) > 0:
				t.Fatalf("unexpected violations: %q", got)
			case tc.want != "" && !found:
				t.Fatalf("want a violation starting %q, got %q", tc.want, got)
			}
		})
	}
}

// Every value the workload draws is one JSON value, and the draw covers every size
// class and the characters encoders rewrite.
func TestValues_AreValidAndVaried(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	budget := valueBudget{big: 3, huge: 1}
	var biggest int
	seen := map[string]bool{}
	for i := range 3000 {
		v := newValue(rng, &budget, "node1", i)
		if !json.Valid(v) {
			t.Fatalf("value %d is not valid JSON: %s", i, abbrev(v))
		}
		if p := newPatch(rng, i); !json.Valid(p) {
			t.Fatalf("patch %d is not valid JSON: %s", i, p)
		}
		biggest = max(biggest, len(v))
		for _, s := range []string{"<", "&", "\u2028", "\u2029", "日本語", "1e400", "12345678901234567890", `{"a":[{"a":[`} {
			if bytes.Contains(v, []byte(s)) {
				seen[s] = true
			}
		}
	}
	if biggest < hugeMin || biggest > hugeMax {
		t.Errorf("the largest value is %d bytes, want one in [%d, %d]", biggest, hugeMin, hugeMax)
	}
	if len(seen) != 8 {
		t.Errorf("the values lack some of the pieces: saw only %v", seen)
	}
}

// alterOnDisk changes one digit of a stored value in a real bolt file, and nothing else.
func TestAlterOnDisk_ChangesOneDigitOfTheData(t *testing.T) {
	file := filepath.Join(t.TempDir(), "main.db")
	st := &storage.BoltStorage{Path: file}
	if err := st.Start(storage.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Set("items/a", []byte(`{"n":12345,"t":"x"}`)); err != nil {
		t.Fatal(err)
	}
	changes, _, err := st.Changes("items/a", 0, 1)
	st.Close()
	if err != nil || len(changes) != 1 {
		t.Fatalf("read back: %v %v", changes, err)
	}
	altered, err := alterOnDisk(file, changes[0].Entry)
	if err != nil {
		t.Fatal(err)
	}
	if string(altered) != `{"n":12346,"t":"x"}` {
		t.Fatalf("altered to %s", altered)
	}
	if _, err := alterOnDisk(file, storage.Entry{Key: "items/a", Created: 1, Data: changes[0].Data}); !errors.Is(err, errNotOnDisk) {
		t.Fatalf("an entry with other stamps: want errNotOnDisk, got %v", err)
	}
}
