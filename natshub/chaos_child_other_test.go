//go:build !linux

package natshub_test

import "syscall"

// childAttr: outside Linux there is no parent-death signal; Cleanup still kills every
// nats-server child.
func childAttr() *syscall.SysProcAttr { return nil }
