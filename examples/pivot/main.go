// Command pivot runs the pivot (hub) of a cluster as its own process, on BoltStorage.
//
//	go run ./examples/pivot -addr 127.0.0.1:8800 -data /tmp/pivot-data -token secret
//
// Nodes (see examples/node) register themselves under "things/*" with -advertise, or an
// operator started with -admin $ADMIN writes their address there:
//
//	curl -H "Authorization: Bearer $ADMIN" -X POST -d '{"ip":"127.0.0.1:8801"}' 'http://127.0.0.1:8800/things/*'
//
// Without -admin, REST writes to things/* are refused (401): nobody can register an
// address of their choice. With -cert, -key and -ca every instance serves and dials with
// mutual TLS; addresses without a scheme then mean https.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/metrics"
	"github.com/benitogf/pivot/ooo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8800", "address to listen on")
	data := flag.String("data", "pivot-data", "folder of the BoltStorage file")
	token := flag.String("token", "", "cluster token (the same on every instance)")
	cluster := flag.String("cluster", "example", "cluster id (the same on every instance)")
	admin := flag.String("admin", "", "credential for REST writes to things/* (Authorization: Bearer <admin>); empty: none allowed")
	cert := flag.String("cert", "", "PEM certificate of this instance: with -key and -ca, serve and dial with mutual TLS")
	keyFile := flag.String("key", "", "PEM key of -cert")
	ca := flag.String("ca", "", "PEM certificate of the authority that signed every instance's certificate")
	read := flag.String("read", "", "read-only operator credential: the status page's data (/~pivot/ui) and the metrics (/~pivot/metrics) take it as a bearer token; empty: page off, metrics open")
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
		ReadToken: *read,
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
	result := pivot.Setup(server, config)
	if err := result.Handle("/metrics", metrics.Handler(result, *read)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := server.Start(*addr); err != nil {
		if errors.Is(err, ooo.ErrLocked) {
			fmt.Fprintf(os.Stderr, "-data %s is in use by another process: every instance needs a data folder of its own\n", *data)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logger.Info("pivot listening", "addr", server.Address, "data", *data)
	server.WaitClose()
}
