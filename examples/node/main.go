// Command node runs a node of a cluster as its own process, on BoltStorage. It keeps
// serving reads and writes while the pivot is away, and catches up when it returns.
//
//	go run ./examples/node -addr 127.0.0.1:8801 -pivot 127.0.0.1:8800 -data /tmp/node1 -token secret
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8801", "address to listen on")
	pivotAddr := flag.String("pivot", "127.0.0.1:8800", "the pivot's host:port")
	advertise := flag.String("advertise", "", "host:port the pivot reaches this node at (default: -addr)")
	data := flag.String("data", "node-data", "folder of the BoltStorage file")
	token := flag.String("token", "", "cluster token (the same on every instance)")
	cluster := flag.String("cluster", "example", "cluster id (the same on every instance)")
	admin := flag.String("admin", "", "credential for REST writes to things/* (Authorization: Bearer <admin>); empty: none allowed")
	cert := flag.String("cert", "", "PEM certificate of this instance: with -key and -ca, serve and dial with mutual TLS")
	keyFile := flag.String("key", "", "PEM key of -cert")
	ca := flag.String("ca", "", "PEM certificate of the authority that signed every instance's certificate")
	flag.Parse()
	if *advertise == "" {
		*advertise = *addr
	}
	if *pivotAddr == "" {
		fmt.Fprintln(os.Stderr, "-pivot is required")
		os.Exit(2)
	}

	if err := os.MkdirAll(*data, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	server := &ooo.Server{Storage: &ooo.BoltStorage{Path: *data}, Logger: logger}
	server.Pivot = *pivotAddr
	config := pivot.Config{
		Keys:      []pivot.Key{{Path: "users/*"}, {Path: "settings"}},
		NodesKey:  "things/*",
		Token:     *token,
		ClusterID: *cluster,
		Advertise: *advertise,
		Logger:    logger,
	}
	if *cert != "" {
		tc, err := pivot.LoadMutualTLS(*cert, *keyFile, *ca)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		config.TLS = tc
	}
	if err := config.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Only nodes (through the authenticated protocol) and operators holding -admin
	// may add, change or remove nodes.
	pivot.ProtectNodesKey(server, config.NodesKey, pivot.BearerAllows(*admin))
	pivot.Setup(server, config)
	if err := server.Start(*addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logger.Info("node listening", "addr", server.Address, "pivot", *pivotAddr, "data", *data)
	server.WaitClose()
}
