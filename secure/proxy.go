package secure

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pires/go-proxyproto"

	"github.com/passerelle/passerelle/internal/peekconn"
)

// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2) lets
// a TCP load balancer tell the server behind it who the client is: the
// balancer's first bytes on each connection are a header naming the
// client's address. Only the balancers listed in ServerConfig.ProxyProtocol
// may send one, and they must: a header from anyone else would let any
// client pose as any address, and a balancer's connection without one
// would count every client behind it as the balancer.
//
// The header is read where a connection first enters (Server.Serve's
// connection goroutine, under the handshake deadline), before the Preface,
// the TLS handshake and every log line, so that all of them, the
// per-address limit included, see the client's address. The check that a
// client from another address sends none is made there too, except on a
// plain listener, whose clients may never speak first (lazyUnlisted).

// proxyBufferSize is the read buffer that holds a PROXY header: a version 1
// header is at most 107 bytes, a version 2 header 16 bytes plus its length
// (go-proxyproto reads past the buffer for long TLV lists).
const proxyBufferSize = 256

// HandshakeProxyHeader: a listener that takes the PROXY protocol closed the
// connection for its header (a listed balancer sent none or a bad one, or
// an unlisted address sent one).
const HandshakeProxyHeader HandshakeOutcome = "proxy_header"

// ParseProxyProtocol reads the proxy_protocol setting: IP prefixes in CIDR
// notation ("10.0.0.0/8", "2001:db8::/32") or single addresses. The errors
// name each bad entry by its index.
func ParseProxyProtocol(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for i, s := range list {
		p, err := ParseProxyPrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("[%d] %w", i, err))
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// ParseProxyPrefix reads one entry of the proxy_protocol setting.
func ParseProxyPrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q: want an address or a CIDR prefix such as 10.0.0.0/8", s)
}

// fromBalancer reports whether a connection from addr must start with a
// PROXY header.
func (cfg *ServerConfig) fromBalancer(addr net.Addr) bool {
	if len(cfg.ProxyProtocol) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range cfg.ProxyProtocol {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// errProxyHeader is a connection closed for its PROXY header; its text is
// the log line's reason, kind the line's rate-limiting key (ratelog).
type errProxyHeader struct{ kind, reason string }

func (e errProxyHeader) Error() string { return e.reason }

// errProxyUnlisted is a PROXY header from an address not listed.
var errProxyUnlisted = errProxyHeader{"proxy_unlisted", "PROXY protocol header from an address not in proxy_protocol"}

// readProxyHeader reads the PROXY header of a balancer's connection, or
// checks that another client sends none, and returns the connection to go
// on with: a peekconn.Conn whose reads replay what was read past the
// header, and whose RemoteAddr is the client's address the balancer gave.
// A header with the LOCAL command (the balancer's own health check) keeps
// the balancer's address.
//
// From an unlisted address, the first bytes are read until they differ
// from both signatures ("PROXY" for version 1, 12 bytes starting with
// "\r\n" for version 2), which for a TLS client is its first byte. A
// plain listener's client may speak last or never (a chat client that
// only listens): there the check waits for what its service reads
// (lazyUnlisted), so that the client is served at once.
func readProxyHeader(raw net.Conn, balancer bool) (net.Conn, error) {
	if !balancer {
		pc := peekconn.New(raw)
		if sig, _ := proxySignature(pc); sig {
			return nil, errProxyUnlisted
		}
		// What the client sent (or the error) is for the next reader.
		return pc, nil
	}
	// go-proxyproto parses from a bufio.Reader, which reads past the
	// header; what it holds beyond is replayed.
	br := bufio.NewReaderSize(raw, proxyBufferSize)
	h, err := proxyproto.Read(br)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return nil, errProxyHeader{"proxy_missing", "no PROXY protocol header from a balancer in proxy_protocol"}
	case err != nil:
		return nil, errProxyHeader{"proxy_bad", "bad PROXY protocol header: " + err.Error()}
	}
	pc := &proxiedConn{Conn: raw, remote: raw.RemoteAddr()}
	if h.Command.IsProxy() {
		if src, _, ok := h.TCPAddrs(); ok {
			pc.remote = src
		}
	}
	past, _ := br.Peek(br.Buffered())
	return peekconn.NewReplaying(pc, past), nil
}

// proxySignature reports whether c starts with the signature of a version
// 1 or 2 header, reading ahead only until its bytes tell. When a read ends
// (its deadline included) before they tell, it returns false and that
// read's error.
func proxySignature(c *peekconn.Conn) (bool, error) {
	for {
		b := c.Peeked()
		maybe := false
		for _, sig := range [][]byte{proxyproto.SIGV1, proxyproto.SIGV2} {
			n := min(len(b), len(sig))
			if bytes.Equal(b[:n], sig[:n]) {
				if n == len(sig) {
					return true, nil
				}
				maybe = true
			}
		}
		if !maybe {
			return false, nil
		}
		if _, err := c.Fill(len(proxyproto.SIGV2)); err != nil && len(c.Peeked()) == len(b) {
			return false, err
		}
	}
}

// lazyUnlisted is a plain listener's connection from an unlisted address:
// the check that it starts with no PROXY header runs on the first reads of
// its service rather than before it, and a header found there closes the
// connection (refuse says so) and ends the read with errProxyUnlisted.
type lazyUnlisted struct {
	*peekconn.Conn
	checked bool
	refuse  func(error)
}

func (c *lazyUnlisted) Read(p []byte) (int, error) {
	if !c.checked {
		sig, err := proxySignature(c.Conn)
		switch {
		case sig:
			c.refuse(errProxyUnlisted)
			c.Conn.Close()
			return 0, errProxyUnlisted
		case err != nil:
			return 0, err // nothing that tells yet: ask again at the next read
		}
		c.checked = true
	}
	return c.Conn.Read(p)
}

// proxiedConn is a balancer's connection past its PROXY header: its
// RemoteAddr is the client's.
type proxiedConn struct {
	net.Conn
	remote net.Addr
}

// NetConn is the balancer's connection under c.
func (c *proxiedConn) NetConn() net.Conn { return c.Conn }

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// CloseWrite half-closes the TCP connection, as a plain listener's services
// do before draining (protocol/envoie).
func (c *proxiedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
