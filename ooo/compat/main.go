// Command compat is a small ooo program, and the tests that drive it, written only
// against upstream ooo's API (github.com/benitogf/ooo at 85b3e6e) as ooo-api.md
// (shared/ooo-api.md, beside the repository) describes it: names, signatures and
// behaviour from that page, nothing read from our packages. It imports github.com/benitogf/pivot/ooo/... where an
// upstream program imports github.com/benitogf/ooo/...; that is the only change. The
// exported storage helper tests, whose signatures the page does not give, are called as
// ooo/storage_conformance.go gives upstream's.
//
// What it proves: a program written for upstream compiles against our ooo and behaves
// as it expects. The tests cover server setup (Router routes before Start, Static,
// NoBroadcastKeys, OnStorageEvent, BeforeRead, OnSubscribe, OnUnsubscribe), Start and
// Close, and WaitClose in the program's own process stopped by SIGTERM; write, read and
// delete filters, AfterWrite and Audit over REST; the io helpers, local and remote; Go
// subscribers (client.Subscribe, client.SubscribeMultiple2); the websocket protocol as
// a client that rebuilds values with messages.PatchCache sees it, ?v= resume and the
// clock socket; packages key, meta and messages; a MemoryStorage started on its own; and
// a Database of the program's own (journalStorage) through ooo.StorageObjectTest,
// StorageListTest, StorageGetNTest and StorageKeysRangeTest.
//
// Where upstream and our ooo differ in a way the program meets, the program accepts
// both, in a comment that points to the entry of ooo/README.md's "Differences from
// upstream ooo"; nothing else was bent.
//
// Run it as an upstream program runs: it serves until SIGINT, SIGTERM or SIGHUP.
//
//	go run ./ooo/compat -addr localhost:8800 -token secret
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	addr := flag.String("addr", "localhost:8800", "address to listen on")
	token := flag.String("token", "secret", "bearer token clients must send")
	flag.Parse()
	// Until WaitClose listens, a SIGTERM must not end the process unannounced: this
	// plain os/signal registration (no ooo API) makes an early one a no-op, so whoever
	// stops the program can send it again.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM)

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
