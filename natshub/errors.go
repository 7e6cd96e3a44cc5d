package natshub

import "errors"

// Errors of this package; test for them with errors.Is. Storage methods also return the
// ooo storage errors (storage.ErrNotFound, storage.ErrTooLarge, ...) as the Database
// contract says.
var (
	// ErrInvalidConfig: a Config field is out of range; the message names it.
	ErrInvalidConfig = errors.New("natshub: invalid config")
	// ErrBucket: an existing bucket cannot serve as a change feed (it keeps more than
	// one revision per key), or could not be created or bound.
	ErrBucket = errors.New("natshub: unusable bucket")
	// ErrUnavailable: the servers did not accept a write or answer a read within the
	// retry budget (Config.RetryFor): no stream leader, no responders, or writes
	// refused by concurrent writers every time.
	ErrUnavailable = errors.New("natshub: servers unavailable")
)
