package key_test

import (
	"strings"
	"testing"

	"github.com/benitogf/pivot/ooo/key"
)

// FuzzIsValid checks the invariants every accepted key must keep, and that matching
// and building never panic on arbitrary input.
func FuzzIsValid(f *testing.F) {
	for _, s := range []string{"a", "ab", "a/b", "a/*", "*", "*/a", "a//b", "/a", "a/", "a**b", "a:b",
		"a-b_c.d", "", "é", "a/./b", strings.Repeat("a", key.MaxLength+1), "things/*/x/*"} {
		f.Add(s, "a/b")
	}
	f.Fuzz(func(t *testing.T, k, other string) {
		valid := key.IsValid(k)
		if want := key.GlobRegex.MatchString(k) && len(k) <= key.MaxLength && !strings.Contains(k, "**") && !dotSegment(k); valid != want {
			t.Fatalf("IsValid(%q) = %v, but GlobRegex and the extra rules say %v", k, valid, want)
		}
		if valid {
			if k == "" || len(k) > key.MaxLength || strings.HasPrefix(k, "/") || strings.HasSuffix(k, "/") ||
				strings.Contains(k, "//") || strings.Contains(k, "**") {
				t.Fatalf("IsValid(%q) accepted a malformed key", k)
			}
			for _, c := range k {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("*/-_.", c)) {
					t.Fatalf("IsValid(%q) accepted the character %q", k, c)
				}
			}
			if !key.Match(k, k) {
				t.Fatalf("Match(%q, itself) = false", k)
			}
		}
		if key.IsWritable(k) {
			if !valid || strings.Count(k, "*") > 1 || (key.IsGlob(k) && !strings.HasSuffix(k, "*")) {
				t.Fatalf("IsWritable(%q) accepted a key that is not a push target", k)
			}
			built := key.BuildAt(k, 0x18eb5906a65b2253)
			if strings.HasSuffix(k, "/*") && (key.IsGlob(built) || !key.IsValid(built) || key.LastIndex(built) != "18eb5906a65b2253") {
				t.Fatalf("BuildAt(%q) = %q, want a valid concrete key", k, built)
			}
		}
		if key.Peer(k, other) != key.Peer(other, k) {
			t.Fatalf("Peer(%q, %q) is not symmetric", k, other)
		}
		if key.Match(k, other) && strings.Count(k, "/") != strings.Count(other, "/") {
			t.Fatalf("Match(%q, %q) crossed a '/'", k, other)
		}
		if !strings.HasSuffix(k, key.LastIndex(k)) || strings.Contains(key.LastIndex(k), "/") {
			t.Fatalf("LastIndex(%q) = %q", k, key.LastIndex(k))
		}
		_ = key.Decode(k)
	})
}

// dotSegment reports whether k has a "." or ".." segment.
func dotSegment(k string) bool {
	for _, seg := range strings.Split(k, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
