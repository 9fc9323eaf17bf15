package web

import (
	"net"
	"syscall"
	"unsafe"
)

// sendQueue returns a function that says how many bytes written to tc the
// client has not taken yet, for the keep-alive: a queue that shrinks is a
// client reading, though what it reads was written long ago. It reads
// SIOCOUTQ (tcp(7)): the bytes in the socket's send queue not yet
// acknowledged by the client. Elsewhere than Linux it returns nil.
func sendQueue(tc *net.TCPConn) func() (int, bool) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() (int, bool) {
		var n int32
		var errno syscall.Errno
		if err := rc.Control(func(fd uintptr) {
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
		}); err != nil || errno != 0 {
			return 0, false
		}
		return int(n), true
	}
}
