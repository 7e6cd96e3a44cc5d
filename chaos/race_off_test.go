//go:build !race

package chaos_test

// raceEnabled tells that the race detector is on (see race_on_test.go).
const raceEnabled = false
