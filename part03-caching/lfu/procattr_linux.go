package lfu

import "syscall"

// childAttr makes the kernel kill redis-server when this process dies without
// calling Close (a crash, SIGPIPE from `| head`, SIGKILL), so no orphan keeps running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
