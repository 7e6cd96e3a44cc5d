//go:build !linux

package chaos_test

import "syscall"

// childAttrs: outside Linux there is no parent-death signal; Cleanup still kills
// every child.
func childAttrs() *syscall.SysProcAttr { return nil }
