package natshub_test

import "syscall"

// childAttr makes a nats-server child die with the test process, so that a test
// killed midway (a timeout, a panic) leaves no server running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
