// Package chaos holds pivot's fault-injection suite; it has no API of its own.
//
// The tests (package chaos_test) start a pivot and 2 to 50 nodes on 127.0.0.1, in the
// test process or each in a child process, each on BoltStorage files in a temporary
// folder, and drive a random workload of real-looking data (values from a few bytes to
// nearly 4 MiB, with HTML characters, U+2028/U+2029, non-ASCII text, numbers no float
// holds and deep nesting; writes, updates, patches, deletes, re-creations, single keys
// and list entries, through the storage API and over HTTP) interleaved with random
// faults: links between the pivot and a node cut or blackholed in one direction,
// requests delayed or dropped before they are sent, answers dropped after the peer
// acted, instances stopped (or killed with SIGKILL) and restarted on the same address
// and data, disks wiped, a digit of a stored value altered in a bolt file, a data folder
// copied to a new node, clocks skewed forward and backward within and beyond the max
// skew. Everything the workload did is recorded in a history.
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
