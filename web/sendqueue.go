package web

import "net"

// sendQueueOf returns a function that says how many bytes written to c
// the client has not taken yet (the socket's send queue), for the
// keep-alive: a queue that shrinks is a client reading, though what it
// reads was written long ago. nil when there is no TCP socket under c or
// the system cannot tell.
func sendQueueOf(c net.Conn) func() (int, bool) {
	if tc := tcpConnOf(c); tc != nil {
		return sendQueue(tc)
	}
	return nil
}

// tcpConnOf follows the connections that say what they wrap (NetConn)
// down to the TCP socket; nil when there is none.
func tcpConnOf(c net.Conn) *net.TCPConn {
	for range 16 {
		if tc, ok := c.(*net.TCPConn); ok {
			return tc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}
