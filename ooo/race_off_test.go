//go:build !race

package ooo_test

// raceEnabled tells that the race detector is on (see race_on_test.go).
const raceEnabled = false
