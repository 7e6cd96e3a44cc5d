// Command pivot runs the pivot (hub) of a cluster as its own process, on BoltStorage.
//
//	go run ./examples/pivot -addr 127.0.0.1:8800 -data /tmp/pivot-data -token secret
//
// Nodes (see examples/node) register themselves under "things/*" with -advertise, or an
// operator writes their address there:
//
//	curl -X POST -d '{"ip":"127.0.0.1:8801"}' 'http://127.0.0.1:8800/things/*'
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
	addr := flag.String("addr", "127.0.0.1:8800", "address to listen on")
	data := flag.String("data", "pivot-data", "folder of the BoltStorage file")
	token := flag.String("token", "", "cluster token (the same on every instance)")
	cluster := flag.String("cluster", "example", "cluster id (the same on every instance)")
	flag.Parse()

	if err := os.MkdirAll(*data, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	server := &ooo.Server{Storage: &ooo.BoltStorage{Path: *data}, Logger: logger}
	config := pivot.Config{
		Keys:      []pivot.Key{{Path: "users/*"}, {Path: "settings"}},
		NodesKey:  "things/*",
		Token:     *token,
		ClusterID: *cluster,
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
	logger.Info("pivot listening", "addr", server.Address, "data", *data)
	server.WaitClose()
}
