package interop

import "syscall"

// sysProcAttr puts the peer in a process group of its own (so that Stop can kill whatever it
// started) and has the kernel send it SIGTERM should the test binary die without stopping
// it (the start scripts exec their node, so the node inherits this).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
