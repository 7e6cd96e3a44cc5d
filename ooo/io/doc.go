// Package io reads and writes the values of an ooo server with Go types, either
// directly on a server's storage in the same process (Get, GetList, Set, Push, Del) or
// over HTTP against a remote server (RemoteGet, RemoteGetList, RemoteSet, RemotePush,
// RemoteDel). The name mirrors upstream ooo's io package; import it under an alias
// (oio) to keep the standard library's io at hand.
//
// The local helpers work on s.Storage itself: they skip the server's filters, Audit and
// static mode, but their writes still raise storage events (so subscribers get the
// broadcast) and their reads still run the storage's BeforeRead hook.
//
// A "list path" is a glob whose last segment is "*" (things/*). Single values are read
// and written at plain keys; lists are read at a glob and appended to with Push.
//
// Differences from upstream ooo's io package, all deliberate:
//   - Push takes its index from the storage's hybrid logical clock when the storage
//     implements storage.Replica, so two pushes never share an index, even from two
//     instances of a cluster. Otherwise it falls back to the wall clock, as upstream.
//   - RemotePush posts to the list glob and the server generates the index (upstream
//     built it on the client). RemotePush returns only an error, as upstream's;
//     RemotePushContext also returns that index.
//   - GetList returns an empty, non-nil slice for an empty list, like RemoteGetList.
//   - Del and RemoteDel exist.
//   - Every Remote call is bounded: by the http.Client's Timeout, or by DefaultTimeout
//     when the client has none. The ...Context variants take a context as well.
//   - Errors are wrapped with the operation and path; the sentinels below and a
//     *StatusError (for a remote non-success answer) can be tested with errors.Is/As,
//     and a remote 404 is errors.Is(err, storage.ErrNotFound) just like a local miss.
package io
