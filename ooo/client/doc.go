// Package client subscribes to an ooo server over websocket from Go.
//
// Subscribe connects to ws(s)://host/path, folds every message the server sends into a
// local copy of the value (a snapshot replaces it, a patch is applied to it), and calls
// back with the whole current state each time: a one-element slice for a single key, the
// full list for a glob. It blocks until its context is cancelled and reconnects on its own
// when the connection drops, so callers usually run it with go.
//
// A list is held entry by entry, decoded: a patch decodes only the entries it touches
// (one per write, for a server that follows changes), never the whole list again. The
// callback's slice is still the whole state, a new slice each time (a copy of the
// decoded entries, which costs a memory copy per entry, not a decoding). Patches are
// applied to the bytes the server sent, keeping their member order, so the held value is
// the server's bytes; operations other than add, remove and replace (move, copy, test,
// which ooo servers do not send) are applied to the whole value.
//
// SubscribeMultiple2, SubscribeMultiple3 and SubscribeMultiple4 combine several
// subscriptions into one callback that always sees the latest state of each.
//
// Differences from upstream ooo's Go client, all deliberate:
//   - The handshake timeout is the constant DefaultHandshakeTimeout, not a package
//     variable any importer could change.
//   - Reconnect waits are bounded (at most 10s) and end at once when the context is
//     cancelled; a failed dial waits on the same schedule as a dropped connection.
//   - Whether the value is a list is read from the data the server sends (a JSON array),
//     not guessed from the path, so any glob (a/*/c) works, not only paths ending in "*".
//   - A value that does not decode into T never forces a reconnect (reconnecting would
//     fetch the same value again): a list skips such items, a single key skips the
//     message. A missing key whose empty data "{}" does not fit T yields T's zero value.
package client
