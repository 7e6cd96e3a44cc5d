package pivot

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// The frames of the live stream, as both sides write and check them (see the
// frame types in protocol.go).
//
// Why every frame is signed, and not only the upgrade: the websocket is one TCP
// connection, and without TLS anyone on the path can inject bytes into it after the
// handshake. A node that applied unsigned frames would take data from whoever can
// do that; carrying only pokes and pulling would be safe too, but it costs every
// change a round trip more, which is what the stream exists to save. An HMAC per
// frame costs about a microsecond for a small frame, and binds it to this
// connection (the upgrade's proof, which the node chose and the pivot accepted
// once), to its direction and to its place in the sequence: a frame from another
// connection, an altered, repeated, reordered or missing frame fails the check, and
// the receiver closes the stream and pulls instead.

// streamLabel keeps a frame's HMAC from ever being taken for a request's or an
// answer's.
const streamLabel = "pivot stream frame"

// Directions of a frame, in its HMAC.
const (
	toNode  = "to node"
	toPivot = "to pivot"
)

// streamMAC returns the HMAC under secret of the n-th frame (from 1) sent in
// direction dir on the stream opened by the request whose proof is upgradeSig.
func streamMAC(secret []byte, upgradeSig, dir string, n uint64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, f := range []string{streamLabel, ProtocolVersion, upgradeSig, dir, strconv.FormatUint(n, 10)} {
		writeField(m, []byte(f))
	}
	writeField(m, body)
	return m.Sum(nil)
}

// frameSigner signs the frames one side sends on one stream, or checks the frames
// it receives. Not safe for concurrent use: each direction has one owner.
type frameSigner struct {
	secret []byte // nil: no Token, frames carry no HMAC and none is checked
	proof  string // the upgrade request's proof
	dir    string
	n      uint64 // frames signed or checked so far
}

// write sends body as the next frame on conn, within streamWriteTimeout.
func (s *frameSigner) write(conn *websocket.Conn, body []byte) error {
	s.n++
	var sig []byte
	if s.secret != nil {
		sig = []byte(hex.EncodeToString(streamMAC(s.secret, s.proof, s.dir, s.n, body)))
	}
	_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	w, err := conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	_, _ = w.Write(sig)
	_, _ = w.Write([]byte{'\n'})
	_, _ = w.Write(body)
	return w.Close()
}

// check verifies one received message as the next frame and decodes it into f.
func (s *frameSigner) check(msg []byte, f *streamFrame) error {
	s.n++
	sig, body, ok := bytes.Cut(msg, []byte{'\n'})
	if !ok {
		return fmt.Errorf("%w: no signature line", errFrame)
	}
	if s.secret != nil {
		got, err := hex.DecodeString(string(sig))
		if err != nil || !hmac.Equal(got, streamMAC(s.secret, s.proof, s.dir, s.n, body)) {
			return fmt.Errorf("%w: frame %d carries no valid signature: %w", errFrame, s.n, ErrUnauthorized)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		return fmt.Errorf("%w: frame %d: %v", errFrame, s.n, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: frame %d: trailing data", errFrame, s.n)
	}
	return nil
}
