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
	if err := config.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	result := pivot.Setup(server, config)
	server.BeforeRead = result.BeforeRead
	if err := server.Start(*addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logger.Info("node listening", "addr", server.Address, "pivot", *pivotAddr, "data", *data)
	server.WaitClose()
}
