package main

import "testing"

// TestRun runs the whole example scenario: it must converge and lose nothing (exit
// code 0).
func TestRun(t *testing.T) {
	if code := run(20, 50); code != 0 {
		t.Fatalf("the example hub did not converge or lost writes (exit code %d)", code)
	}
}
