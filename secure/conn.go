package secure

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
)

// Conn is one accepted connection as a handler sees it: already past its TLS
// handshake (unless the listener is plain) and past the Preface, with the
// verdict on the client's certificate.
type Conn struct {
	net.Conn // the *tls.Conn, or the raw connection when plain
	raw      net.Conn
	tlsConn  *tls.Conn
	verdict  Verdict
	// finish tells the Server the connection is over; set by the Server
	// before the handler runs, nil on a Conn it did not make. ended makes
	// end run once; detached is set by Detach, in the handler's goroutine.
	finish   func()
	ended    sync.Once
	detached bool
}

// end closes the connection and tells the Server it is over, once: when
// the handler returns, or through what Detach returned.
func (c *Conn) end() {
	c.ended.Do(func() {
		c.Close()
		c.finish()
	})
}

// Detach lets the handler return while the connection lives on: the Server
// then neither closes the connection nor counts it as over when the
// handler returns (the shutdown grace still waits for it). The returned end
// closes it and counts it as over; call it once the connection is done
// with, from any goroutine (later calls do nothing). Call Detach from the
// handler's goroutine, before the handler returns. A service that holds
// many idle clients uses it to let each one's goroutine go while it waits
// (hub). It returns nil, and detaches nothing, on a Conn no Server made.
func (c *Conn) Detach() (end func()) {
	if c.finish == nil {
		return nil
	}
	c.detached = true
	return c.end
}

// PeerStatus is the status of the client certificate: StatusUnknown when the
// client sent none (or the listener is plain).
func (c *Conn) PeerStatus() Status { return c.verdict.Status }

// PeerVerdict is the whole judgement on the client certificate.
func (c *Conn) PeerVerdict() Verdict { return c.verdict }

// TLS returns the connection state, or nil on a plain listener.
func (c *Conn) TLS() *tls.ConnectionState {
	if c.tlsConn == nil {
		return nil
	}
	cs := c.tlsConn.ConnectionState()
	return &cs
}

// Abort closes the TCP connection under any TLS layer at once, without a
// close_notify alert. It is the close to use after a write was cut short
// (an alert after half a record would reach the peer as a corrupt record)
// or when the peer is not reading (the alert's write would block).
func (c *Conn) Abort() error { return c.raw.Close() }

// CloseWrite half-closes a plain listener's TCP connection, so that a
// service can say its last words, let the client see the end, and still
// read what the client sends meanwhile (protocol/envoie after a refusal)
// instead of having them destroyed by a reset. Over TLS it returns
// errors.ErrUnsupported: a half-close there would need a close_notify,
// and the service closes instead.
func (c *Conn) CloseWrite() error {
	if c.tlsConn != nil {
		return errors.ErrUnsupported
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// NetConn is the connection under any TLS layer (as tls.Conn's NetConn):
// for what only the socket can tell, such as how much of what was written
// the client has not taken yet. Reading or writing it directly would
// corrupt the TLS stream.
func (c *Conn) NetConn() net.Conn { return c.raw }

// PeerStatusWord is the client certificate's status as its word, for the
// services' log lines (hub.PeerStatusReporter): "" when no client
// certificate was judged (none asked for, or none sent), so that the lines
// of listeners without mutual TLS carry no peer_status=unknown.
func (c *Conn) PeerStatusWord() string {
	if len(c.verdict.Certificates) == 0 {
		return ""
	}
	return string(c.verdict.Status)
}
