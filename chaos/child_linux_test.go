package chaos_test

import "syscall"

// childAttrs makes a child process die with the test process, so that a test killed
// midway (a timeout, a panic) leaves no instance running.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
