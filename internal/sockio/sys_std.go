//go:build unix && (!linux || race)

package sockio

import "syscall"

// sysRead and sysWrite go through the scheduler here: see sys_raw.go.
func sysRead(fd int, p []byte) (int, error)  { return syscall.Read(fd, p) }
func sysWrite(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }
