package ooo

import (
	"errors"

	"github.com/benitogf/pivot/ooo/storage"
)

// Errors of the server, whose texts are also the bodies of the matching HTTP error
// responses, then those of its storage. Test for them with errors.Is.
var (
	// ErrInvalidKey answers a request whose key is not valid (400).
	ErrInvalidKey = errors.New("ooo: pathKeyError key is not valid")
	// ErrNotAuthorized answers a request refused by Audit (401).
	ErrNotAuthorized = errors.New("ooo: this request is not authorized")
	// ErrGlobWrite answers a write that would land on a glob, such as PUT things/* (400).
	ErrGlobWrite = errors.New("ooo: can't write to a glob key")
	// ErrEmptyKey answers a read of a missing key (404).
	ErrEmptyKey = errors.New("ooo: empty key")
	// ErrRouteNotDefined answers, in Static mode, a request no filter allows (400).
	ErrRouteNotDefined = errors.New("ooo: route not defined, static mode")
	// ErrInvalidFilterResult means a filter returned something that is not JSON (400).
	ErrInvalidFilterResult = errors.New("ooo: filter returned invalid JSON")
	// ErrInvalidSetting is returned by Start for a negative duration or size: zero
	// means the default, and no Server setting can be turned off.
	ErrInvalidSetting = errors.New("ooo: invalid setting")
	// ErrActive is returned by Start on a server that is already started.
	ErrActive = errors.New("ooo: server already active")
	// ErrMethodNotAllowed answers a method the key routes do not serve (405).
	ErrMethodNotAllowed = errors.New("ooo: method not allowed")
	// ErrBodyTooLarge answers a body over MaxBodyBytes (413).
	ErrBodyTooLarge = errors.New("ooo: request body too large")

	// The storage errors, the very values of package storage (errors.Is works with
	// either name); see there for what each means. Over HTTP: ErrNotFound 404,
	// ErrNoop 409, ErrTooLarge 413, ErrNotActive 503, the other input errors 400.

	ErrInvalidPath    = storage.ErrInvalidPath    // invalid key
	ErrNotFound       = storage.ErrNotFound       // missing key
	ErrNoop           = storage.ErrNoop           // a patch that changes nothing
	ErrEmptyData      = storage.ErrEmptyData      // a write without data
	ErrInvalidData    = storage.ErrInvalidData    // data that is not JSON
	ErrInvalidPattern = storage.ErrInvalidPattern // a list operation without a glob
	ErrInvalidRange   = storage.ErrInvalidRange   // a range ending before it starts
	ErrInvalidLimit   = storage.ErrInvalidLimit   // a limit that is not positive
	ErrGlobLock       = storage.ErrGlobLock       // GetAndLock of a glob
	ErrLockNotFound   = storage.ErrLockNotFound   // unlock of a key not locked
	ErrNotActive      = storage.ErrNotActive      // storage not started, or closed
	ErrLocked         = storage.ErrLocked         // storage file held by another opener
	ErrCorrupt        = storage.ErrCorrupt        // storage file damaged
	ErrTooLarge       = storage.ErrTooLarge       // data over the storage's data limit
)

// deadlineMessage is the body of the 503 sent when a write outlives Deadline.
const deadlineMessage = "ooo: server deadline reached"
