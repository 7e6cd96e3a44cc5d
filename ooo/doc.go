// Package ooo is a real-time state server compatible with upstream ooo: JSON values
// stored under slash-separated keys, served over REST and pushed to websocket
// subscribers as JSON Patch (RFC 6902) messages.
//
// Basics:
//
//	server := &ooo.Server{}
//	if err := server.Start("localhost:0"); err != nil { ... }
//	defer server.Close(os.Interrupt)
//	// POST http://<server.Address>/things/* stores a new item,
//	// GET  http://<server.Address>/things/* lists them,
//	// a websocket on ws://<server.Address>/things/* receives every change.
//
// Storage events are dispatched in write order by one goroutine: first the websocket
// broadcast, then OnStorageEvent. A Server may be closed and started again; its routes
// are registered once per Router and its Storage keeps the data.
//
// See README.md for the routes, status codes, wire format and the deliberate
// differences from upstream ooo.
package ooo
