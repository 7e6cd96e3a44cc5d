package natshub

import (
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/benitogf/pivot/ooo/key"
)

// FuzzSubjectKey proves the key mapping a bijection on valid plain keys: every valid
// key maps to a valid NATS KV key with one token per segment that maps back to it, and
// a subject key that maps back to a key is that key's image. Reserved keys map to no key.
func FuzzSubjectKey(f *testing.F) {
	for _, s := range []string{"a", "a/b", "users/1", "a.b/c.d", "...", ".a/b.", "a-b_c", "x/y/z", "a=b", "a/*", "_ooo/state", "a..b", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if key.IsValid(k) && !key.IsGlob(k) {
			sk := subjectKey(k)
			if !validKVKey(sk) {
				t.Fatalf("%q maps to %q, not a valid KV key", k, sk)
			}
			if got := strings.Count(sk, ".") + 1; got != strings.Count(k, "/")+1 {
				t.Fatalf("%q: %d tokens for %d segments", k, got, strings.Count(k, "/")+1)
			}
			back, ok := ooKey(sk)
			if !ok || back != k {
				t.Fatalf("%q -> %q -> %q (%v)", k, sk, back, ok)
			}
		}
		// The other direction: whatever maps back to a key is that key's image.
		if back, ok := ooKey(k); ok {
			if subjectKey(back) != k {
				t.Fatalf("ooKey(%q) = %q, whose image is %q", k, back, subjectKey(back))
			}
			if !key.IsValid(back) || key.IsGlob(back) {
				t.Fatalf("ooKey(%q) = %q, not a valid plain key", k, back)
			}
		}
	})
}

// validKVKey is the NATS KV key grammar: tokens of [-/_=a-zA-Z0-9] and '.' between
// non-empty tokens, and a valid subject.
func validKVKey(k string) bool {
	if k == "" || k[0] == '.' || k[len(k)-1] == '.' || strings.Contains(k, "..") {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-/_=.", c) >= 0) {
			return false
		}
	}
	return server.IsValidSubject("$KV.b." + k)
}

// TestFilterKey checks that the NATS filter of a pattern lets through every key the
// pattern matches (the client then checks key.Match for what it lets through besides).
func TestFilterKey(t *testing.T) {
	keys := []string{"a", "ab", "a/b", "a/bc", "b/a", "a/b/c", "a.b/c", "us/1", "users/1", "users/1/x", "x.y"}
	patterns := []string{"", "a", "*", "a/*", "*/a", "a*", "a*/b", "us*/*", "users/*", "*/*/*", "a.b/*", "x.*"}
	for _, p := range patterns {
		f := filterKey(p)
		for _, k := range keys {
			if (p == "" || key.Match(p, k)) && !server.SubjectMatchesFilter(subjectKey(k), f) {
				t.Errorf("pattern %q matches %q, filter %q refuses %q", p, k, f, subjectKey(k))
			}
		}
	}
	// A one-token filter also selects the reserved keys: readers must drop them.
	if f := filterKey("*"); !server.SubjectMatchesFilter(stateKey, f) {
		t.Fatalf("filter %q of * does not select %q; the test's premise changed", f, stateKey)
	}
	if _, ok := ooKey(stateKey); ok {
		t.Fatal("the state key maps to an ooo key")
	}
	if _, ok := ooKey(globKey); ok {
		t.Fatal("the glob key maps to an ooo key")
	}
}
