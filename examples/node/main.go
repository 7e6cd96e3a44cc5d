// Command node runs a node of a cluster as its own process, on BoltStorage. It keeps
// serving reads and writes while the pivot is away, and catches up when it returns.
//
//	go run ./examples/node -addr 127.0.0.1:8801 -pivot 127.0.0.1:8800 -data /tmp/node1 -token secret
//
// A node the pivot cannot dial (behind NAT or a firewall) runs with -advertise none: it
// registers no address and gets every change over its live stream to the pivot.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/metrics"
	"github.com/benitogf/pivot/ooo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8801", "address to listen on")
	pivotAddr := flag.String("pivot", "127.0.0.1:8800", "the pivot's host:port")
	advertise := flag.String("advertise", "", "host:port the pivot reaches this node at (default: -addr, or with no host in -addr the local address that routes to -pivot); \"none\": the pivot cannot reach this node, which registers no address and gets every change over its live stream")
	stream := flag.Bool("stream", true, "keep a live stream open to the pivot (false: rely on the pivot's triggers, the periodic sync and reads)")
	data := flag.String("data", "node-data", "folder of the BoltStorage file")
	token := flag.String("token", "", "cluster token (the same on every instance)")
	cluster := flag.String("cluster", "example", "cluster id (the same on every instance)")
	admin := flag.String("admin", "", "credential for REST writes to things/* (Authorization: Bearer <admin>); empty: none allowed")
	cert := flag.String("cert", "", "PEM certificate of this instance: with -key and -ca, serve and dial with mutual TLS")
	keyFile := flag.String("key", "", "PEM key of -cert")
	ca := flag.String("ca", "", "PEM certificate of the authority that signed every instance's certificate")
	read := flag.String("read", "", "read-only operator credential: the status page's data (/~pivot/ui) and the metrics (/~pivot/metrics) take it as a bearer token; empty: page off, metrics open")
	flag.Parse()
	if *pivotAddr == "" {
		fmt.Fprintln(os.Stderr, "-pivot is required")
		os.Exit(2)
	}
	switch *advertise {
	case "none":
		if !*stream {
			fmt.Fprintln(os.Stderr, "-advertise none needs the live stream (-stream): nothing else brings the pivot's changes at once")
			os.Exit(2)
		}
		*advertise = ""
	case "":
		a, err := advertised(*addr, *pivotAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		*advertise = a
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
		ReadToken: *read,

		DisableStream: !*stream,
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
	logger.Info("node listening", "addr", server.Address, "pivot", *pivotAddr, "data", *data)
	server.WaitClose()
}

// advertised is the address the pivot reaches this node at when -advertise is not set:
// -addr itself, or for an -addr without a host (":8801", "0.0.0.0:8801") the local
// address this machine reaches the pivot from, with -addr's port.
func advertised(addr, pivotAddr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("-addr %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return addr, nil
	}
	target := pivotAddr
	if _, after, ok := strings.Cut(target, "://"); ok {
		target = strings.TrimSuffix(after, "/")
	}
	// A UDP "connection" sends nothing: it only asks the system which local address
	// routes to the pivot.
	conn, err := net.Dial("udp", target)
	if err != nil {
		return "", fmt.Errorf("-addr %q names no host and the route to -pivot %q is unknown (%v): set -advertise host:port, the address the pivot reaches this node at", addr, pivotAddr, err)
	}
	defer conn.Close()
	local := conn.LocalAddr().(*net.UDPAddr)
	return net.JoinHostPort(local.IP.String(), port), nil
}
