package readiness

import (
	"errors"
	"net"
	"syscall"

	"github.com/passerelle/passerelle/internal/peekconn"
)

// ErrUnsupported is NewPoller's error where there is no Poller, and Arm's
// for a connection with no socket it can reach.
var ErrUnsupported = errors.New("readiness: cannot watch this connection here")

// ErrClosed is Arm's error once the Poller is closed.
var ErrClosed = errors.New("readiness: poller closed")

// Watchable reports whether Arm can watch c (on a system with a Poller).
func Watchable(c net.Conn) bool {
	_, ok := socket(c)
	return ok
}

// socket finds the socket under c: nil with true when a layer holds bytes
// read ahead (there is something to read already), false when there is no
// socket to reach.
func socket(c net.Conn) (syscall.Conn, bool) {
	for c != nil {
		switch v := c.(type) {
		case *peekconn.Conn:
			if v.Pending() {
				return nil, true
			}
			c = v.Conn
		case syscall.Conn:
			return v, true
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}
