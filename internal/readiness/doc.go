// Package readiness calls back when a connection's peer sends, with no
// goroutine waiting for it.
//
// A relay that holds many idle clients pays, for each, the stack of the
// goroutine blocked in its read: inside crypto/tls that stack is 4 KiB or
// more, and Go never halves it while the goroutine waits there (it shrinks
// a stack only when less than a quarter of it is in use, the 800-byte guard
// counted). A Poller holds the idle connections in one epoll set instead:
// their goroutines return, and when a peer sends (or closes, or its socket
// fails), the Poller starts a goroutine that calls the function given to
// Arm, which reads as usual. The epoll set is itself watched by Go's
// network poller, so the Poller has one goroutine, parked like any reader,
// and no thread of its own.
//
// Arm sees through the layers passerelle puts on a socket: a peekconn.Conn
// holding bytes read ahead calls back at once, and a connection with a
// NetConn method (secure.Conn, a PROXY protocol connection) is watched
// through the connection under it. A layer Arm cannot see into
// (crypto/tls's record buffer) is the caller's business: it must know that
// the layer holds nothing whole to read, which a read of it that has just
// timed out tells.
//
// Only Linux has a Poller; elsewhere NewPoller returns ErrUnsupported and
// callers keep a goroutine per connection.
package readiness
