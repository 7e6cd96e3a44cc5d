package natshub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot/natshub"
	"github.com/benitogf/pivot/ooo/storage"
)

// Two pivot processes share one bucket: what one writes, the other reads and sees as
// an event. The server here runs in the program, on a loopback port; in production it
// is a cluster of nats-server processes with sync_interval: always, and the storage
// uses Replicas: 3.
func Example() {
	dir, _ := os.MkdirTemp("", "natshub-example")
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true, SyncAlways: true})
	if err != nil {
		panic(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		panic("server not ready")
	}

	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	open := func(process string) *natshub.Storage {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			panic(err)
		}
		conns = append(conns, nc)
		js, _ := jetstream.New(nc)
		db, err := natshub.New(context.Background(), js, natshub.Config{Bucket: "hub", Process: process})
		if err != nil {
			panic(err)
		}
		if err := db.Start(storage.Options{}); err != nil {
			panic(err)
		}
		return db
	}
	a, b := open("hub-1"), open("hub-2")
	defer a.Close()
	defer b.Close()

	if _, err := a.Set("users/ana", json.RawMessage(`{"name":"Ana"}`)); err != nil {
		panic(err)
	}
	ev := <-b.Watch()
	fmt.Println(ev.Operation, ev.Key, string(ev.Object.Data))
	changes, _, _ := b.Changes("users/*", 0, 10)
	fmt.Println(len(changes), changes[0].Key, a.Epoch() == b.Epoch())
	// Output:
	// set users/ana {"name":"Ana"}
	// 1 users/ana true
}
