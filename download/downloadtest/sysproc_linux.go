//go:build linux

package downloadtest

import "syscall"

// sysProcAttr makes the kernel kill a child when the test binary dies without
// running its cleanups (a test timeout panics and exits), so no btcd or lnd
// outlives the test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
