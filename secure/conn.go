package secure

import (
	"crypto/tls"
	"net"
)

// Conn is one accepted connection as a handler sees it: already past its TLS
// handshake (unless the listener is plain), with the verdict on the client's
// certificate.
type Conn struct {
	net.Conn // the *tls.Conn, or the raw connection when plain
	tlsConn  *tls.Conn
	verdict  Verdict
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
