// Command compat is a small ooo program written only against upstream ooo's API
// (github.com/benitogf/ooo at 85b3e6e) as /work/shared/ooo-api.md describes it: its
// names, signatures and behaviour, nothing read from our own packages. It imports
// github.com/benitogf/pivot/ooo/... where an upstream program would import
// github.com/benitogf/ooo/...; that is the only change. The tests beside it build it,
// run it and drive it (server setup, Start/Close/WaitClose, write/read/delete filters,
// AfterWrite, Audit, static mode, the io helpers, Go subscribers, a storage of its own
// through the exported storage helper tests), so that they prove a program written for
// upstream compiles and behaves against our ooo.
//
// Where our ooo differs from upstream in a way this program meets, the code says so in
// a comment that points to the entry of ooo/README.md's "Differences from upstream ooo".
//
// Run it as an upstream program runs: it serves until SIGINT, SIGTERM or SIGHUP.
//
//	go run ./ooo/compat -addr localhost:8800 -token secret
package main

import (
	"flag"
	"fmt"
	"log"
)

func main() {
	addr := flag.String("addr", "localhost:8800", "address to listen on")
	token := flag.String("token", "secret", "bearer token clients must send")
	flag.Parse()

	app := newLibrary(*token, &journalStorage{})
	app.server.OnClose = func() { fmt.Println("closed") }
	// Upstream's Start returns nothing and calls log.Fatal when it cannot listen; ours
	// returns an error instead (README: "Start returns an error"). Calling it as a
	// statement and checking Active works with both.
	app.server.Start(*addr)
	if !app.server.Active() {
		log.Fatalf("compat: the server did not start on %s", *addr)
	}
	fmt.Println("listening", app.server.Address)
	app.server.WaitClose()
}
