//go:build race

package chaos_test

// raceEnabled tells that the race detector is on: everything runs several times
// slower, and the timings that bound one request must allow for it.
const raceEnabled = true
