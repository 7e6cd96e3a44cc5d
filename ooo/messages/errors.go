package messages

import "errors"

// Errors returned by this package. Test for them with errors.Is.
var (
	// ErrEmptyData means a message had no data field (or an empty one).
	ErrEmptyData = errors.New("messages: empty data")
	// ErrEmptyBody means a request body held no JSON value at all.
	ErrEmptyBody = errors.New("messages: empty body")
	// ErrInvalidJSON means a body was not exactly one well-formed JSON value.
	ErrInvalidJSON = errors.New("messages: invalid JSON")
	// ErrInvalidPatch means a patch message could not be decoded or applied.
	ErrInvalidPatch = errors.New("messages: invalid patch")
	// ErrNeedSnapshot is returned by Diff when the change is better sent as a whole
	// value: it replaces the whole document, or it touches an object member whose name
	// is empty (a path such as "/a//b" that patch libraries commonly mishandle).
	ErrNeedSnapshot = errors.New("messages: change needs a snapshot")
)
