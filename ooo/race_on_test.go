//go:build race

package ooo_test

// raceEnabled tells that the race detector is on: JSON work on megabytes runs many
// times slower, so tests that move the largest values size them down under it.
const raceEnabled = true
