//go:build unix && !linux

package interop

import "syscall"

// sysProcAttr puts the peer in a process group of its own, so that Stop can kill whatever
// it started. (Without Linux's Pdeathsig, --max-seconds is the only safety net should the
// test binary die.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
