// Package messages encodes and decodes what an ooo server sends on a subscription
// websocket, reads JSON request bodies, and folds received messages into a client-side
// cache.
//
// A subscription message is a binary websocket frame holding
//
//	{"snapshot":<bool>,"version":"<hex>","data":<json>}
//
// with the fields in exactly that order. A snapshot carries the whole value (one stored
// object, or a JSON array of them); otherwise data is an RFC 6902 JSON Patch from the
// value the client holds to the new one.
package messages

import (
	"encoding/json"
	"fmt"
)

// Message is one subscription message as sent by the server.
type Message struct {
	// Snapshot is true when Data is the whole value, false when it is a JSON Patch.
	Snapshot bool `json:"snapshot"`
	// Version is the lowercase hex version of the value after this message.
	Version string `json:"version"`
	// Data is the value (snapshot) or the RFC 6902 patch to apply.
	Data json.RawMessage `json:"data"`
}

// Encode returns the wire form of a message. data is embedded verbatim and must be one
// valid JSON value; version must not need JSON escaping (it is hex). The result is a
// new slice that the caller owns.
func Encode(snapshot bool, version string, data []byte) []byte {
	const (
		head = `{"snapshot":`
		mid  = `,"version":"`
		tail = `","data":`
	)
	buf := make([]byte, 0, len(head)+5+len(mid)+len(version)+len(tail)+len(data)+1)
	buf = append(buf, head...)
	if snapshot {
		buf = append(buf, "true"...)
	} else {
		buf = append(buf, "false"...)
	}
	buf = append(buf, mid...)
	buf = append(buf, version...)
	buf = append(buf, tail...)
	buf = append(buf, data...)
	return append(buf, '}')
}

// DecodeBuffer parses one message. A message without data is ErrEmptyData.
func DecodeBuffer(data []byte) (Message, error) {
	var msg Message
	if err := json.Unmarshal(data, &msg); err != nil {
		return Message{}, fmt.Errorf("messages: decode message: %w", err)
	}
	if len(msg.Data) == 0 {
		return Message{}, ErrEmptyData
	}
	return msg, nil
}
