//go:build linux && !race

package sockio

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket,
// made without telling the scheduler (RawSyscall). syscall.Read and
// syscall.Write announce a call that may block (entersyscall and
// exitsyscall); on a non-blocking socket none does, and the announcement
// costs more than its bookkeeping: each one wakes the runtime's monitor
// thread (sysmon) if it was asleep, and a woken monitor polls every
// 20 µs for a millisecond or more before it backs off. A gateway whose
// processor idles between bursts of requests wakes it on every burst, and
// the monitor then preempts the thread serving requests thousands of
// times a second (see docs/performance.md, "Raw socket calls"). A write is
// still announced when the network poll looks overdue (pollOverdue): the
// monitor also makes the network poll a saturated server depends on.
//
// Under the race detector the standard calls are used instead (sys_std.go):
// they tell the detector that a write to a socket happens before the read
// that receives it, which tests rely on.

func sysRead(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func sysWrite(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
