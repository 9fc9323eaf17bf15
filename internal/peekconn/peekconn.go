package peekconn

import (
	"errors"
	"net"
	"os"
)

// Conn is a connection whose first bytes can be read ahead (Fill, Peeked)
// and are then read again by Read. A Conn is used by one reader at a time;
// writes, deadlines and Close go to the connection under it.
type Conn struct {
	net.Conn
	buf []byte // read ahead, not read again yet
	err error  // the error that ended the read ahead, after buf
}

// New wraps c, or returns c itself when it already is a *Conn, so that
// bytes read ahead by one step are seen by the next.
func New(c net.Conn) *Conn {
	if pc, ok := c.(*Conn); ok {
		return pc
	}
	return &Conn{Conn: c}
}

// NewReplaying wraps c with b as bytes already read from it by a parser
// that had to read ahead on its own (a bufio.Reader's buffer past a PROXY
// header), so that the next reader gets them first, as it would after
// Fill. b is copied.
func NewReplaying(c net.Conn, b []byte) *Conn {
	pc := &Conn{Conn: c}
	if len(b) > 0 {
		pc.buf = append([]byte(nil), b...)
	}
	return pc
}

// Peeked returns the bytes read ahead and not read again yet. The slice is
// the Conn's: it is valid until the next Fill or Read.
func (c *Conn) Peeked() []byte { return c.buf }

// Fill reads once from the connection, adding at most max-len(Peeked())
// bytes to what was read ahead, and returns the error of that read. A
// deadline that passed is returned but not kept: it is the classifier's
// business, and the service reads on afterwards. Any other error is kept
// and returned by Read once the bytes read ahead are consumed, so the
// service sees the client leave as it would have without the read ahead.
// Fill reads nothing once such an error is kept, and returns it.
func (c *Conn) Fill(max int) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(c.buf) >= max {
		return 0, nil
	}
	if c.buf == nil {
		c.buf = make([]byte, 0, max)
	} else if cap(c.buf) < max {
		c.buf = append(make([]byte, 0, max), c.buf...)
	}
	n, err := c.Conn.Read(c.buf[len(c.buf):max])
	c.buf = c.buf[:len(c.buf)+n]
	if len(c.buf) == 0 {
		c.buf = nil // a silent client keeps no buffer
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.err = err
	}
	return n, err
}

// Read returns the bytes read ahead first, then the kept error, then what
// the connection reads.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		if len(c.buf) == 0 {
			c.buf = nil // the read-ahead buffer is not kept for life
		}
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}

// Abort ends the connection without a graceful close when the connection
// under it knows how (secure.Conn: no TLS close_notify after half a
// record), else closes it.
func (c *Conn) Abort() error {
	if a, ok := c.Conn.(interface{ Abort() error }); ok {
		return a.Abort()
	}
	return c.Conn.Close()
}

// CloseWrite half-closes the connection under c when it knows how (a
// plain TCP connection), so that a service that half-closes before
// draining (protocol/envoie) still can behind a read ahead; else it
// returns errors.ErrUnsupported.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// PeerStatusWord is the verdict on the client's certificate, when the
// connection under it knows it; "" otherwise.
func (c *Conn) PeerStatusWord() string {
	if p, ok := c.Conn.(interface{ PeerStatusWord() string }); ok {
		return p.PeerStatusWord()
	}
	return ""
}

// NetConn is the connection under c, for what only the socket can tell
// (the send queue of the WebSocket keep-alive).
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Pending reports whether the next Read returns without reading from the
// connection under c: bytes read ahead, or an error kept, are waiting.
func (c *Conn) Pending() bool { return len(c.buf) > 0 || c.err != nil }

// Detach passes on the connection's Detach (secure.Conn: the handler may
// return while the connection lives on), nil when the connection under c
// cannot be detached.
func (c *Conn) Detach() (end func()) {
	if d, ok := c.Conn.(interface{ Detach() func() }); ok {
		return d.Detach()
	}
	return nil
}
