package ooo

import "errors"

// Errors of the server itself, also the texts of the matching HTTP error responses.
// Test for them with errors.Is.
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
	// ErrActive is returned by Start on a server that is already started.
	ErrActive = errors.New("ooo: server already active")
	// ErrMethodNotAllowed answers a method the key routes do not serve (405).
	ErrMethodNotAllowed = errors.New("ooo: method not allowed")
	// ErrBodyTooLarge answers a body over MaxBodyBytes (413).
	ErrBodyTooLarge = errors.New("ooo: request body too large")
)

// deadlineMessage is the body of the 503 sent when a write outlives Deadline.
const deadlineMessage = "ooo: server deadline reached"
