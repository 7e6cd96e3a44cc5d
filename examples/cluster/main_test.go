package main

import "testing"

// TestRun runs the whole example scenario: it must converge (exit code 0).
func TestRun(t *testing.T) {
	if code := run(false, 20); code != 0 {
		t.Fatalf("the example cluster did not converge (exit code %d)", code)
	}
}
