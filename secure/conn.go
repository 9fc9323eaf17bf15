package secure

import (
	"crypto/tls"
	"errors"
	"net"
)

// Conn is one accepted connection as a handler sees it: already past its TLS
// handshake (unless the listener is plain) and past the Preface, with the
// verdict on the client's certificate.
type Conn struct {
	net.Conn // the *tls.Conn, or the raw connection when plain
	raw      net.Conn
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
