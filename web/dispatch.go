package web

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/net/http2"

	"github.com/passerelle/passerelle/internal/peekconn"
	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/protocol/policy"
)

// ALPN is the protocol a browser negotiates on a TLS listener, which is
// then served as HTTP/1.1 at once.
const ALPN = "http/1.1"

// alpnACME is the protocol of ACME's TLS-ALPN-01 validation (RFC 8737): the
// handshake itself is the answer, and the connection carries nothing after.
const alpnACME = "acme-tls/1"

// maxRequestLine is the longest first line the front door reads to tell an
// HTTP request: a client whose first bytes are this long without being a
// complete request line is a client of the raw protocol.
const maxRequestLine = 4 << 10

// firstRead is the size of the first read of a client's first bytes.
const firstRead = 128

// connKind is what the front door found a connection to be.
type connKind uint8

const (
	// kindRaw: a client of the listener's own protocol (chat, ENVOIE,
	// echo): anything that is none of the others, or silent.
	kindRaw connKind = iota
	// kindHTTP: an HTTP/1.x client, by ALPN or by its request line.
	kindHTTP
	// kindPolicy: a policy-file request, answered.
	kindPolicy
	// kindHTTP2: an HTTP/2 client with prior knowledge, refused.
	kindHTTP2
	// kindGone: nothing to serve: the client left before its first byte,
	// the listener is shutting down, or the handshake was an ACME
	// validation.
	kindGone
)

// Door is the one classification step of every listener, past its TLS
// handshake (a plain listener has none): it tells a connection's kind by
// its ALPN, then by its first bytes, answers the policy request and refuses
// HTTP/2 itself, and hands the others on (Serve). The client's bytes are
// read through a peekconn.Conn and read again by whoever serves it.
//
//	ALPN http/1.1                         HTTP, nothing read
//	ALPN acme-tls/1                       closed (the handshake was the answer)
//	<policy-file-request/> NUL            the policy and a NUL, then closed
//	PRI * HTTP/2.0 CRLF                   HTTP/2 SETTINGS and GOAWAY HTTP_1_1_REQUIRED, closed
//	METHOD SP TARGET SP HTTP/1.x CRLF     HTTP (net/http)
//	anything else, or silence for Wait    the raw protocol, from the first byte
//
// A Door is safe for concurrent use.
type Door struct {
	// Gate answers the policy request; its Policy and WriteTimeout are used.
	Gate *policy.Gate
	// Wait is how long a silent client is waited for before it is taken
	// for a raw client (chat.policy_wait). Default policy.DefaultWait.
	Wait time.Duration
	// LineTimeout bounds the first line once its first byte came: a line
	// still unfinished then is the raw protocol. Default
	// policy.DefaultReadTimeout.
	LineTimeout time.Duration
	// Log receives one line per HTTP/2 client refused, rate-limited; nil
	// logs nothing.
	Log *ratelog.Logger
}

// Admit takes a raw client in as soon as its handshake is done, before its
// first bytes are read: it returns what runs the client once it is known
// to be raw (serve), and what withdraws it when it is not (leave). Neither
// admitting nor leaving writes anything to the client.
type Admit func(ctx context.Context, c net.Conn) (serve, leave func())

// Serve classifies c and hands it on: to admit's serve for the raw
// protocol, to httpd for HTTP (to the raw protocol when httpd is nil: the
// listener serves no browser). alpn is what the TLS handshake negotiated,
// "" on a plain listener. The caller closes c when Serve returns.
func (d *Door) Serve(ctx context.Context, c net.Conn, alpn string, httpd *ConnServer, admit Admit) {
	switch alpn {
	case ALPN:
		if httpd != nil {
			httpd.ServeConn(ctx, c)
			return
		}
	case alpnACME:
		return
	}
	pc := peekconn.New(c)
	serve, leave := admit(ctx, pc)
	kind := d.classify(ctx, pc)
	if kind == kindHTTP && httpd == nil {
		kind = kindRaw
	}
	if kind == kindRaw {
		serve()
		return
	}
	leave()
	if kind == kindHTTP {
		httpd.ServeConn(ctx, pc)
	}
}

// classify reads c's first bytes until it can tell what the client is,
// answers a policy request and refuses HTTP/2 itself, and leaves the bytes
// it read to be read again. It reads at most maxRequestLine bytes, waits
// Wait for the first of them and LineTimeout in all once they begin, and
// leaves c without a read deadline. Cancelling ctx ends the wait: the
// client is then kindGone.
func (d *Door) classify(ctx context.Context, c *peekconn.Conn) connKind {
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(aLongTimeAgo) })
	kind := d.sniff(ctx, c)
	if !stop() || ctx.Err() != nil {
		return kindGone
	}
	c.SetReadDeadline(time.Time{})
	switch kind {
	case kindPolicy:
		d.Gate.Answer(c)
	case kindHTTP2:
		d.refuseHTTP2(c)
	}
	return kind
}

func (d *Door) sniff(ctx context.Context, c *peekconn.Conn) connKind {
	start := time.Now()
	c.SetReadDeadline(start.Add(orDefault(d.Wait, policy.DefaultWait)))
	if ctx.Err() != nil { // cancelled before the deadline above was set
		return kindGone
	}
	begun := false
	for {
		p := c.Peeked()
		if len(p) > 0 {
			if kind, decided := judge(p); decided {
				return kind
			}
			if len(p) >= maxRequestLine {
				return kindRaw
			}
			if !begun {
				begun = true
				c.SetReadDeadline(start.Add(orDefault(d.LineTimeout, policy.DefaultReadTimeout)))
			}
		}
		// The read-ahead buffer grows with what came: a client waited
		// for holds a small one, and a first line of a few bytes never
		// costs maxRequestLine.
		if _, err := c.Fill(min(maxRequestLine, max(firstRead, 4*len(p)))); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				// Silence, or a first line unfinished in time: the raw
				// protocol, which gets what was read.
				return kindRaw
			case len(c.Peeked()) == 0:
				return kindGone
			}
			// The client sent something, then left: what it sent is
			// judged as it is, and served (the service then reads the
			// error).
			if kind, decided := judge(c.Peeked()); decided {
				return kind
			}
			return kindRaw
		}
	}
}

// judge says what a connection whose first bytes are p is, once it can.
func judge(p []byte) (connKind, bool) {
	isReq, maybe := policy.IsRequest(p)
	switch {
	case isReq:
		return kindPolicy, true
	case maybe:
		return 0, false
	}
	return requestLine(p)
}

// requestLine says whether p starts with an HTTP request line (RFC 9112
// section 3: method SP request-target SP HTTP-version CRLF), once it can
// tell: an HTTP/1.x line is kindHTTP, HTTP/2's preface line (RFC 9113
// section 3.4) is kindHTTP2, and anything else, a line of any other
// version included, is kindRaw.
func requestLine(p []byte) (connKind, bool) {
	i := 0
	for i < len(p) && isTokenChar(p[i]) {
		i++
	}
	switch {
	case i == len(p):
		return 0, false
	case i == 0 || p[i] != ' ':
		return kindRaw, true
	}
	method := p[:i]
	i++
	t := i
	for i < len(p) && p[i] > ' ' && p[i] != 0x7f {
		i++
	}
	switch {
	case i == len(p):
		return 0, false
	case i == t || p[i] != ' ':
		return kindRaw, true
	}
	target := p[t:i]
	i++
	const version = "HTTP/#.#\r\n" // # is a digit
	v := i
	for j := 0; j < len(version); j, i = j+1, i+1 {
		if i == len(p) {
			return 0, false
		}
		if ok := version[j] == '#' && '0' <= p[i] && p[i] <= '9' || version[j] == p[i]; !ok {
			return kindRaw, true
		}
	}
	switch ver := string(p[v : v+len("HTTP/#.#")]); {
	case ver == "HTTP/2.0" && string(method) == "PRI" && string(target) == "*":
		return kindHTTP2, true
	case ver[len("HTTP/")] == '1':
		return kindHTTP, true
	}
	return kindRaw, true
}

// isTokenChar reports whether b may appear in a method (RFC 9110 section
// 5.6.2, tchar).
func isTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// HTTP2Refusal is the debug data of the GOAWAY an HTTP/2 client gets.
const HTTP2Refusal = "passerelle: HTTP/2 is not served on this port; use HTTP/1.1 (WebSocket, pages) or the raw protocol"

// refusal bounds: the answer's write, and the reading of what the client
// sent after its preface line, drained so that closing does not reset the
// connection under the answer.
const (
	refuseWriteTimeout = 5 * time.Second
	refuseDrainTimeout = time.Second
	refuseDrainMax     = 64 << 10
)

// refuseHTTP2 answers an HTTP/2 client with the server's connection preface
// (an empty SETTINGS frame, RFC 9113 section 3.4) and a GOAWAY whose code,
// HTTP_1_1_REQUIRED, tells it to retry over HTTP/1.1 (section 7), with
// HTTP2Refusal as its debug data.
func (d *Door) refuseHTTP2(c net.Conn) {
	if d.Log != nil {
		d.Log.Info("http2", "HTTP/2 client refused: this port serves HTTP/1.1 and its raw protocol", "remote_addr", c.RemoteAddr().String())
	}
	c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	fr := http2.NewFramer(c, nil)
	if fr.WriteSettings() != nil || fr.WriteGoAway(0, http2.ErrCodeHTTP11Required, []byte(HTTP2Refusal)) != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(refuseDrainTimeout))
	io.Copy(io.Discard, io.LimitReader(c, refuseDrainMax))
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
