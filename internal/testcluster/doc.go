// Package testcluster starts pivot instances on loopback, breaks the links between
// them and waits for them to converge. It is the one harness of the repository: the
// root package's tests, the chaos suite, cmd/pivot-bench and examples/cluster build
// their clusters with it, so a new test or scenario is a few lines and every one of
// them means the same thing by "started", "cut" and "converged".
//
// Files: instance.go (one instance: start, stop, restart, registration), cluster.go
// (a pivot and its nodes), converge.go (the replicated state of an instance, digests,
// waiting for convergence), faults.go (the fault layer between instances), ports.go
// (loopback addresses).
//
// Everything here listens on and dials 127.0.0.1 only. Nothing here is a public API:
// it changes with the tests that use it.
package testcluster
