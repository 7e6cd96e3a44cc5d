// Package pivot keeps several ooo servers in sync.
//
// One server is the pivot (the hub); the others are nodes. Every instance keeps serving
// reads and accepting writes while the others are unreachable, and when connectivity
// returns the data converges by last-write-wins per entry (see Wins in lww.go).
package pivot
