package natshub

import (
	"strings"

	"github.com/benitogf/pivot/ooo/key"
)

// Key mapping. An ooo key is segments of [A-Za-z0-9_.-] (and '*' in globs) separated by
// '/'; a NATS subject is tokens separated by '.'. subjectKey maps '/' to '.' and '.' to
// '=', a character ooo keys never hold, so the map is a bijection from valid keys onto
// the subject keys it produces, and the segments of a key are the tokens of its
// subject: a glob such as "users/*" becomes the native filter "users.*".
//
// No valid ooo key maps to a subject key holding '/', so the storage's reserved keys
// (stateKey, globKey) use it and can never collide with data.

// subjectKey is the NATS KV key (the part of the subject after the bucket) of the ooo
// key k. k must be a valid key; a glob's '*' segments pass through unchanged.
func subjectKey(k string) string {
	b := []byte(k)
	for i, c := range b {
		switch c {
		case '.':
			b[i] = '='
		case '/':
			b[i] = '.'
		}
	}
	return string(b)
}

// ooKey is the ooo key of the NATS KV key s, and false when s is not the image of a
// valid plain ooo key (a reserved key, or a key written by another program).
func ooKey(s string) (string, bool) {
	if strings.IndexByte(s, '/') >= 0 || strings.IndexByte(s, '*') >= 0 {
		return "", false
	}
	b := []byte(s)
	for i, c := range b {
		switch c {
		case '.':
			b[i] = '/'
		case '=':
			b[i] = '.'
		}
	}
	k := string(b)
	if !key.IsValid(k) {
		return "", false
	}
	return k, true
}

// filterKey is the NATS KV key filter that selects every key matching the ooo pattern
// (a key or a glob; "" for every key). A segment holding '*' becomes the NATS wildcard
// '*', which matches one whole token as ooo's '*' matches within one segment. A
// segment such as "a*" (ooo: segments starting with "a") has no NATS equivalent and
// selects every token, and a filter of one wildcard also selects the reserved keys, so
// readers always check ooKey and key.Match on what the filter lets through.
func filterKey(pattern string) string {
	if pattern == "" {
		return ">"
	}
	segs := strings.Split(pattern, "/")
	for i, seg := range segs {
		if strings.IndexByte(seg, '*') >= 0 {
			segs[i] = "*"
			continue
		}
		segs[i] = strings.ReplaceAll(seg, ".", "=")
	}
	return strings.Join(segs, ".")
}

// Reserved keys of the data bucket. Each holds a '/', so no ooo key maps to it.
const (
	// stateKey holds the data set's state: its epoch and tombstone horizon (JSON).
	stateKey = "_ooo/state"
	// globKey carries the one event of a glob delete (header hdrGlob).
	globKey = "_ooo/glob"
)
