package io

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/benitogf/pivot/ooo/storage"
)

// Errors returned before anything is read or written. Test for them with errors.Is.
var (
	// ErrGlobPath: a single-value operation (Get, Set) was given a glob.
	ErrGlobPath = errors.New("io: path is a glob, not a single key")
	// ErrNotListPath: a list operation was given a path that is not a list (GetList
	// needs a glob, Push needs a writable list path such as things/*).
	ErrNotListPath = errors.New("io: path is not a list")
	// ErrNoServer: a local helper was given a nil server or a server without storage.
	ErrNoServer = errors.New("io: server has no storage")
)

// StatusError is a remote server's answer with an unexpected status. A 404 is also
// errors.Is(err, storage.ErrNotFound).
type StatusError struct {
	Op         string // the helper that made the call, e.g. "RemoteGet"
	Path       string // the key or glob asked for
	StatusCode int    // e.g. 404
	Message    string // the start of the response body, the server's reason
}

var _ error = (*StatusError)(nil)

// Error names the helper, the path, the status and the server's message.
func (e *StatusError) Error() string {
	return fmt.Sprintf("io: %s[%s]: not OK status: %d %s: %s",
		e.Op, e.Path, e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Is makes a 404 answer match storage.ErrNotFound.
func (e *StatusError) Is(target error) bool {
	return target == storage.ErrNotFound && e.StatusCode == http.StatusNotFound
}
