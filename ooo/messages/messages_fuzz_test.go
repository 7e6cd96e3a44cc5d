package messages_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/benitogf/pivot/ooo/messages"
)

// FuzzDiff checks that for any two JSON values, applying Diff(a, b) to a yields b.
func FuzzDiff(f *testing.F) {
	seeds := [][2]string{
		{`{}`, `{"a":1}`},
		{`[1,2,3]`, `[3]`},
		{`{"a":[{"b":1}]}`, `{"a":[{"b":2},{"c":3}]}`},
		{`1`, `"x"`},
		{`{"created":1795626763539324221}`, `{"created":1795626763539324222}`},
		{`{"~0":"/"}`, `{"~1":"~"}`},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !json.Valid([]byte(a)) || !json.Valid([]byte(b)) {
			return
		}
		patch, err := messages.Diff([]byte(a), []byte(b))
		if errors.Is(err, messages.ErrNeedSnapshot) {
			return
		}
		if err != nil {
			return // jsondiff refuses some exotic inputs (e.g. duplicate keys); never silently wrong
		}
		got, err := messages.PatchCache(messages.Message{Data: patch}, json.RawMessage(a))
		if err != nil {
			t.Fatalf("apply %s to %s: %v", patch, a, err)
		}
		if canonical(t, got) != canonical(t, []byte(b)) {
			t.Fatalf("%s + %s = %s, want %s", a, patch, got, b)
		}
	})
}

// FuzzDecodeReader checks that DecodeReader returns exactly one valid JSON value or a
// classified error, never both and never a panic.
func FuzzDecodeReader(f *testing.F) {
	for _, s := range []string{``, ` `, `{}`, `{"a":1}`, `[1,2`, `1 2`, `"x"y`, `null`, "\xff", "\v0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, err := messages.DecodeReader(strings.NewReader(body))
		if err != nil {
			if !errors.Is(err, messages.ErrEmptyBody) && !errors.Is(err, messages.ErrInvalidJSON) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !json.Valid(got) || !json.Valid([]byte(body)) {
			t.Fatalf("accepted %q as %q: the body is not one JSON value", body, got)
		}
	})
}
