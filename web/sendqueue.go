package web

import "net"

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
