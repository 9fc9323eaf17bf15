package web

import (
	"bytes"
	"errors"
	"net"
	"os"
	"time"
)

// ALPN is the protocol a browser negotiates on a TLS listener, which is
// then served as HTTP/1.1 at once.
const ALPN = "http/1.1"

// methods are the request-line starts taken for HTTP: a method and a space.
var methods = [][]byte{
	[]byte("GET "), []byte("HEAD "), []byte("POST "), []byte("PUT "), []byte("DELETE "),
	[]byte("OPTIONS "), []byte("PATCH "), []byte("CONNECT "), []byte("TRACE "),
}

// maxMethod is the longest of methods.
const maxMethod = len("OPTIONS ")

// Sniff tells an HTTP client from a client of the raw protocol on one
// connection, already past its TLS handshake and the policy check. alpn is
// the protocol the TLS handshake negotiated ("" on a plain listener): ALPN
// "http/1.1" is HTTP without reading anything. Otherwise Sniff reads the
// first bytes, waiting at most wait for them: a request line starting with
// an HTTP method and a space is HTTP; anything else, or silence (a chat
// client that only listens), is the raw protocol. It reads no more than a
// method's length and returns a connection that replays what it read, and
// keeps the connection's Abort and PeerStatusWord.
func Sniff(c net.Conn, alpn string, wait time.Duration) (net.Conn, bool) {
	if alpn == ALPN {
		return c, true
	}
	var buf [maxMethod]byte
	n := 0
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if isHTTP, decided := classify(buf[:n]); decided {
			return replay(c, buf[:n]), isHTTP
		}
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				// The client left or failed: the raw service sees the
				// same error on its first read.
				return &Peeked{Conn: c, prefix: bytes.Clone(buf[:n]), err: err}, false
			}
			break
		}
	}
	return replay(c, buf[:n]), false
}

// classify says whether p starts an HTTP request line, once it can tell.
func classify(p []byte) (isHTTP, decided bool) {
	maybe := false
	for _, m := range methods {
		switch {
		case bytes.HasPrefix(p, m):
			return true, true
		case bytes.HasPrefix(m, p):
			maybe = true
		}
	}
	return false, !maybe
}

func replay(c net.Conn, p []byte) net.Conn {
	return &Peeked{Conn: c, prefix: bytes.Clone(p)}
}

// Peeked is a connection whose first bytes were read by Sniff and are read
// again. It keeps the Abort and PeerStatusWord of the connection under it.
type Peeked struct {
	net.Conn
	prefix []byte // not read again yet
	err    error  // the error that ended Sniff's read, after the prefix
}

func (p *Peeked) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		if len(p.prefix) == 0 {
			p.prefix = nil
		}
		return n, nil
	}
	if p.err != nil {
		return 0, p.err
	}
	return p.Conn.Read(b)
}

// Abort closes the connection without a graceful TLS close when the
// connection under it knows how, else closes it.
func (p *Peeked) Abort() error { return abort(p.Conn) }

// PeerStatusWord is the verdict on the client's certificate, when the
// connection under it knows it.
func (p *Peeked) PeerStatusWord() string { return peerStatus(p.Conn) }

func abort(c net.Conn) error {
	if a, ok := c.(interface{ Abort() error }); ok {
		return a.Abort()
	}
	return c.Close()
}

func peerStatus(c net.Conn) string {
	if p, ok := c.(interface{ PeerStatusWord() string }); ok {
		return p.PeerStatusWord()
	}
	return ""
}
