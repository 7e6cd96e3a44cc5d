// Package key validates, matches and builds ooo keys.
//
// A key is a path of segments separated by '/'. Segments hold ASCII letters, digits and
// the characters '-', '_' and '.'; a '*' is a glob that matches one whole segment (or
// the rest of one). Unlike upstream ooo, two-character keys are valid.
package key

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MaxLength is the longest key accepted, in bytes.
const MaxLength = 1024

// IsValid reports whether k is a well-formed key or glob: non-empty, at most MaxLength
// bytes, no leading, trailing or doubled '/', no "**", no "." or ".." segment (HTTP
// clients resolve those away before sending, so such a key could not be reached by
// URL), and only the characters [A-Za-z0-9*_.-] inside segments.
func IsValid(k string) bool {
	if k == "" || len(k) > MaxLength {
		return false
	}
	if k[0] == '/' || k[len(k)-1] == '/' || strings.Contains(k, "//") || strings.Contains(k, "**") {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !validChar(k[i]) {
			return false
		}
	}
	for _, seg := range strings.Split(k, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// GlobRegex is the grammar of a key's characters and segments, as upstream ooo exports
// it: segments of [A-Za-z0-9*_.-] separated by single '/', none empty. IsValid accepts a
// key exactly when GlobRegex matches it and the key also has no "**", no "." or ".."
// segment and at most MaxLength bytes. IsValid does not consult this variable, so
// assigning to it changes nothing but the caller's own matches.
var GlobRegex = regexp.MustCompile(`^[A-Za-z0-9*_.\-]+(/[A-Za-z0-9*_.\-]+)*$`)

func validChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '*', c == '/', c == '-', c == '_', c == '.':
		return true
	}
	return false
}

// IsGlob reports whether k contains a '*'.
func IsGlob(k string) bool {
	return strings.Contains(k, "*")
}

// IsWritable reports whether k may be the target of a write: valid, and if it is a glob,
// its only '*' is its last character (a push target such as "things/*").
func IsWritable(k string) bool {
	if !IsValid(k) {
		return false
	}
	n := strings.Count(k, "*")
	return n == 0 || (n == 1 && k[len(k)-1] == '*')
}

// Match reports whether k matches pattern. Equal strings always match; otherwise the
// pattern needs a '*', both must have the same number of segments, and '*' never
// crosses a '/'.
func Match(pattern, k string) bool {
	if pattern == k {
		return true
	}
	if !IsGlob(pattern) {
		return false
	}
	if strings.Count(pattern, "/") != strings.Count(k, "/") {
		return false
	}
	ok, err := filepath.Match(pattern, k)
	return err == nil && ok
}

// Peer reports whether either key matches the other as a pattern.
func Peer(a, b string) bool {
	return Match(a, b) || Match(b, a)
}

// Contains reports whether any entry of list Peer-matches k.
func Contains(list []string, k string) bool {
	for _, p := range list {
		if Peer(p, k) {
			return true
		}
	}
	return false
}

// LastIndex returns the text after the last '/', or all of k when there is none.
func LastIndex(k string) string {
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		return k[i+1:]
	}
	return k
}

// IsList reports whether k names a list: its last segment is "*".
func IsList(k string) bool {
	return LastIndex(k) == "*"
}

// Build replaces the first "/*" of k with "/" and the hex of the wall clock, as upstream
// ooo does. Wall-clock indexes can collide; servers and io helpers use BuildAt with a
// stamp from the storage's clock instead, which is unique across a cluster.
func Build(k string) string {
	return BuildAt(k, time.Now().UnixNano())
}

// BuildAt replaces the first "/*" of k with "/" and the lowercase hex of stamp. A key
// without a '*', or "*" alone, is returned unchanged.
func BuildAt(k string, stamp int64) string {
	i := strings.Index(k, "/*")
	if i < 0 {
		return k
	}
	return k[:i+1] + Encode(stamp) + k[i+2:]
}

// Encode formats a stamp as the lowercase, unpadded hex used for indexes and versions.
func Encode(stamp int64) string {
	return strconv.FormatInt(stamp, 16)
}

// Decode parses a hex segment back into a stamp; anything that is not hex gives 0.
func Decode(segment string) int64 {
	v, err := strconv.ParseInt(segment, 16, 64)
	if err != nil {
		return 0
	}
	return v
}
