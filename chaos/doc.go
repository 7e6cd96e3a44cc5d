// Package chaos holds pivot's fault-injection suite; it has no API of its own.
//
// The tests (package chaos_test) start a pivot and several nodes in one process on
// 127.0.0.1, each on BoltStorage files in a temporary folder, and drive a random
// workload (writes, updates, patches, deletes, re-creations, single keys and list
// entries, through the storage API and over HTTP) interleaved with random faults: links
// between the pivot and a node cut or blackholed in one direction, requests delayed or
// dropped before they are sent, answers dropped after the peer acted, instances stopped
// and restarted on the same address and data, clocks skewed forward and backward within
// and beyond the max skew. Everything the workload did is recorded in a history.
//
// After every fault is healed, a checker proves the invariants of the design over the
// history: all instances converge to identical entries and tombstones within a bounded
// time; every acknowledged write is present or was beaten under pivot.Wins by another
// write or delete of the history; nothing whose last operation was a delete reappears;
// replicas never move backwards under pivot.Wins; node reads and writes keep working
// during the faults.
//
// A run is a function of its seed: the same seed replays the same steps (the
// interleaving with the background sync still varies). `go test ./chaos` runs a few
// short seeds; flags select a long soak (see README.md):
//
//	go test ./chaos -run TestChaos -chaos.seeds=1000 -chaos.ops=80 -v
//	go test ./chaos -run TestChaos -chaos.seed=42 -v
package chaos
