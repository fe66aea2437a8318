//go:build !linux

package lfu

import "syscall"

// childAttr has no portable equivalent of Linux's parent-death signal: elsewhere a
// redis-server child outlives a process that dies without calling Close.
func childAttr() *syscall.SysProcAttr { return nil }
