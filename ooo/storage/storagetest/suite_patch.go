package storagetest

import (
	"encoding/json"
	"testing"

	"github.com/benitogf/pivot/ooo/storage"
)

func runPatch(t *testing.T, newHarness func(t testing.TB) Harness) {
	cases := []struct {
		name, doc, patch, want string
	}{
		{"adds and replaces keys", `{"a":1,"b":2}`, `{"b":3,"c":4}`, `{"a":1,"b":3,"c":4}`},
		{"merges nested objects", `{"o":{"x":1,"y":2}}`, `{"o":{"y":3}}`, `{"o":{"x":1,"y":3}}`},
		{"null does not delete", `{"a":1}`, `{"a":null}`, `{"a":null}`},
		{"array replaces array", `{"a":[1,2]}`, `{"a":[3]}`, `{"a":[3]}`},
		{"object addresses array elements", `{"a":[1,2,3]}`, `{"a":{"1":9}}`, `{"a":[1,9,3]}`},
		{"out of range element is ignored", `{"a":[1],"b":1}`, `{"a":{"5":9},"b":2}`, `{"a":[1],"b":2}`},
		{"scalar over object is ignored", `{"o":{"x":1},"b":1}`, `{"o":5,"b":2}`, `{"b":2,"o":{"x":1}}`},
		{"object over scalar replaces it", `{"a":1}`, `{"a":{"x":1}}`, `{"a":{"x":1}}`},
		{"new object-valued key counts", `{"a":1}`, `{"b":{"x":1}}`, `{"a":1,"b":{"x":1}}`},
		{"big numbers stay exact", `{"n":12345678901234567890}`, `{"m":1.50}`, `{"m":1.50,"n":12345678901234567890}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := fresh(t, newHarness)
			mustSet(t, s, "p", c.doc)
			before := getObject(t, s, "p")
			if got, err := s.Patch("p", json.RawMessage(c.patch)); err != nil || got != "p" {
				t.Fatalf("patch: %q %v", got, err)
			}
			o := getObject(t, s, "p")
			if string(o.Data) != c.want {
				t.Fatalf("merged %s, want %s", o.Data, c.want)
			}
			if o.Created != before.Created || o.Updated <= before.Created {
				t.Fatalf("stamps after patch %+v, before %+v", o, before)
			}
			expectEvents(t, s.Watch(), set("p"), set("p"))
		})
	}
	t.Run("Errors", func(t *testing.T) {
		s := fresh(t, newHarness)
		_, err := s.Patch("missing", json.RawMessage(`{"a":1}`))
		wantErr(t, "patch missing", err, storage.ErrNotFound)
		mustSet(t, s, "p", `{"a":1,"o":{"x":1}}`)
		mustSet(t, s, "gone", `{"a":1}`)
		mustDel(t, s, "gone")
		_, err = s.Patch("gone", json.RawMessage(`{"a":2}`))
		wantErr(t, "patch deleted", err, storage.ErrNotFound)
		h := head(t, s)
		for _, noop := range []string{`{}`, `{"a":1}`, `{"o":{"x":1}}`, `{"o":7}`} {
			_, err = s.Patch("p", json.RawMessage(noop))
			wantErr(t, "noop "+noop, err, storage.ErrNoop)
		}
		for _, bad := range []string{`[1]`, `3`, `{`} {
			_, err = s.Patch("p", json.RawMessage(bad))
			wantErr(t, "body "+bad, err, storage.ErrInvalidData)
		}
		if got := head(t, s); got != h {
			t.Fatalf("refused patches moved the feed from %d to %d", h, got)
		}
		expectEvents(t, s.Watch(), set("p"), set("gone"), del("gone"))
		expectQuiet(t, s)
	})
	t.Run("Glob", func(t *testing.T) {
		s := fresh(t, newHarness)
		mustSet(t, s, "g/c", `{"v":1}`)
		mustSet(t, s, "g/a", `{"v":1}`)
		mustSet(t, s, "g/b", `{"v":2}`)
		ch := s.Watch()
		expectEvents(t, ch, set("g/c"), set("g/a"), set("g/b"))
		if _, err := s.Patch("g/*", json.RawMessage(`{"v":2}`)); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"g/a", "g/b", "g/c"} {
			if o := getObject(t, s, k); string(o.Data) != `{"v":2}` {
				t.Fatalf("%s after glob patch: %s", k, o.Data)
			}
		}
		expectEvents(t, ch, set("g/a"), set("g/c")) // key order, the no-op g/b skipped
		_, err := s.Patch("g/*", json.RawMessage(`{"v":2}`))
		wantErr(t, "glob patch changing nothing", err, storage.ErrNoop)
		expectQuiet(t, s)
	})
}
