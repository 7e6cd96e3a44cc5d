package pivot

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/benitogf/pivot/ooo/storage"
)

// Errors reported by pivot: by Config.Validate, RotateToken and VerifyAnswer, and in
// Status.LastErr and KeyStatus.LastErr (a *RemoteError for a failed exchange). Test for
// them with errors.Is.
var (
	// ErrInvalidConfig wraps every problem found by Config.Validate.
	ErrInvalidConfig = errors.New("pivot: invalid config")
	// ErrUnauthorized: the peer refused this instance's proof of the cluster Token
	// (401) or its client certificate (403), or an answer carried no valid proof.
	ErrUnauthorized = errors.New("pivot: unauthorized")
	// ErrVersionMismatch: the peer speaks another protocol version (409).
	ErrVersionMismatch = errors.New("pivot: protocol version mismatch")
	// ErrClusterMismatch: the peer belongs to another cluster (409).
	ErrClusterMismatch = errors.New("pivot: cluster id mismatch")
	// ErrBadRequest: the peer found the request malformed (400, 404, 405).
	ErrBadRequest = errors.New("pivot: bad request")
	// ErrTooLarge: a request or response body exceeded Config.MaxBodyBytes (413).
	ErrTooLarge = errors.New("pivot: body too large")
	// ErrUnavailable: the peer could not be reached or answered 5xx.
	ErrUnavailable = errors.New("pivot: peer unavailable")
	// ErrNotActive: a synced storage is not started (or already closed). It is the
	// storages' own sentinel (storage.ErrNotActive, ooo.ErrNotActive), so one test
	// catches it whichever side reports it.
	ErrNotActive = storage.ErrNotActive
	// ErrClosed: the engine stopped (Close, or the server's) before the call could
	// finish (SetupResult.WaitAcknowledged).
	ErrClosed = errors.New("pivot: engine closed")
)

// RemoteError is a failed exchange with a peer: the peer answered with an error status,
// or could not be reached (Status 0). It unwraps to one of the sentinel errors above.
type RemoteError struct {
	Op      string // what was being done: "pull", "push", "digest", "trigger"
	Peer    string // the peer's base URL
	Status  int    // HTTP status, 0 when no answer arrived
	Message string // the peer's message or the transport error
	kind    error
}

// Error names the operation and the peer, then the status (when an answer arrived) and
// the message, with the lowercase "pivot:" prefix of every pivot error.
func (e *RemoteError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("pivot: %s %s: %s", e.Op, e.Peer, e.Message)
	}
	return fmt.Sprintf("pivot: %s %s: %d %s: %s", e.Op, e.Peer, e.Status, http.StatusText(e.Status), e.Message)
}

// Unwrap returns the sentinel error for the failure's kind.
func (e *RemoteError) Unwrap() error { return e.kind }

// kindOf maps a peer's error answer (status and the code of its error body) to a
// sentinel error.
func kindOf(status int, code string) error {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ErrUnauthorized
	case status == http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case code == codeVersion:
		return ErrVersionMismatch
	case code == codeCluster:
		return ErrClusterMismatch
	case status >= 500 || status == 0:
		return ErrUnavailable
	default:
		return ErrBadRequest
	}
}

// Errors of the live stream (stream_node.go, stream_frames.go). They stay inside the
// engine: a frame refused for its signature also wraps ErrUnauthorized, which is what
// Status.LastErr is tested against.
var (
	// errFrame: a received stream frame failed its check or is not what that side
	// sends; the stream is closed (and the node pulls).
	errFrame = errors.New("pivot: bad stream frame")
	// errStreamOff: the pivot does not serve the stream (404: an older pivot, or one
	// with Config.DisableStream). The node asks again only every streamOffRetry.
	errStreamOff = errors.New("pivot: the pivot serves no live stream")
)
