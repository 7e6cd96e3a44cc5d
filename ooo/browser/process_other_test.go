//go:build !unix

package browser_test

import "os/exec"

// ownGroup does nothing where process groups do not exist.
func ownGroup(*exec.Cmd) {}

// killGroup does nothing here: the caller kills the main process itself.
func killGroup(int) error { return nil }
