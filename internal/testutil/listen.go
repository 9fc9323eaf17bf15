package testutil

import (
	"net"
	"testing"
)

// Listen opens a TCP listener on an ephemeral loopback port, failing the
// test if it cannot. The listener is closed when the test ends, if the test
// has not closed it before.
func Listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen on loopback: %v", err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	return ln
}

// ClosedAddr returns a loopback address nobody listens on, for tests of
// what happens when a peer is down: it was free a moment ago, and the
// kernel hands out ephemeral ports in turn, so it is not reused at once.
func ClosedAddr(tb testing.TB) *net.TCPAddr {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen on loopback: %v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	if err := ln.Close(); err != nil {
		tb.Fatalf("close the listener: %v", err)
	}
	return addr
}

// TCPPair returns the two ends of a loopback TCP connection, for tests that
// need what net.Pipe lacks (a send buffer, CloseWrite, a socket option).
// Both ends are closed when the test ends.
func TCPPair(tb testing.TB) (client, server *net.TCPConn) {
	tb.Helper()
	ln := Listen(tb)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatalf("dial the listener: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	s, err := ln.Accept()
	if err != nil {
		tb.Fatalf("accept: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	_ = ln.Close()
	return c.(*net.TCPConn), s.(*net.TCPConn)
}
