package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passerelle/passerelle/hub"
)

// ConnServer is passerelle's one handoff of a connection to net/http: an
// http.Server fed one connection at a time by a listener that has already
// accepted it, judged its certificate and found it to be HTTP (Door, or
// every connection of the admin listener): the listener keeps its own
// accept loop, connection limit and handshake, and net/http parses
// requests, keeps connections alive and enforces the header limits
// (ApplyLimits).
type ConnServer struct {
	srv  *http.Server
	ln   *connListener
	done chan struct{}
}

// NewConnServer starts serving handler for the connections ServeConn
// hands it. Handlers find the connection a request came on with connOf.
// headerTimeout bounds the request headers, a WebSocket upgrade's included
// (zero: readHeaderTimeout); a listener passes its handshake timeout, so a
// client that never finishes its upgrade is closed like one that never
// finishes its TLS handshake. log receives net/http's own complaints, at
// debug level; nil discards.
func NewConnServer(handler http.Handler, headerTimeout time.Duration, log *slog.Logger) *ConnServer {
	log = orDiscard(log)
	s := &ConnServer{
		ln:   &connListener{conns: make(chan net.Conn), closed: make(chan struct{})},
		done: make(chan struct{}),
	}
	s.srv = &http.Server{
		Handler:  handler,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// A request's context is its connection's: cancelled when the
		// listener shuts down, so a WebSocket ends with its service's
		// goodbye (a 1001 close) rather than a dropped connection.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if hc, ok := c.(*httpConn); ok {
				ctx = hc.ctx
			}
			return context.WithValue(ctx, connKey{}, c)
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if hc, ok := c.(*httpConn); ok && st == http.StateHijacked {
				hc.hijacked.Store(true)
			}
		},
	}
	s.srv.ReadHeaderTimeout = headerTimeout
	ApplyLimits(s.srv)
	go func() {
		defer close(s.done)
		s.srv.Serve(s.ln)
	}()
	return s
}

// ServeConn serves HTTP on c until the client or the server closes it (or a
// handler that took it over, a WebSocket, ends), or ctx is cancelled; c is
// closed when it returns. Once ctx is cancelled, a connection still in
// HTTP is closed at once, and one a handler took over is given
// takeoverGrace to end by itself (the handler's context is ctx).
func (s *ConnServer) ServeConn(ctx context.Context, c net.Conn) {
	hc := &httpConn{Conn: c, ctx: ctx, closed: make(chan struct{}), takeover: make(chan func(context.Context), 1)}
	select {
	case s.ln.conns <- hc:
	case <-s.ln.closed:
		c.Close()
		return
	case <-ctx.Done():
		c.Close()
		return
	}
	select {
	case <-hc.closed:
		return
	case session := <-hc.takeover:
		hc.takeover = nil // sent once; an idle client keeps no channel
		// A handler took the connection over (a WebSocket) and left its
		// session to run here, in the listener's goroutine: net/http's
		// goroutine, its deep stack and its buffers are gone by now.
		session(ctx)
		if !hc.detached.Load() {
			hc.Close()
		}
		return
	case <-ctx.Done():
	}
	if hc.hijacked.Load() {
		t := time.NewTimer(takeoverGrace)
		defer t.Stop()
		select {
		case <-hc.closed:
			return
		case <-t.C:
		}
	}
	hc.Close()
	<-hc.closed
}

// takeoverGrace is how long a connection a handler took over may take to
// end by itself once its listener shuts down.
const takeoverGrace = 2 * time.Second

// Close stops the server: connections still being read are closed, and
// ServeConn hands no more over.
func (s *ConnServer) Close() error {
	s.ln.Close()
	err := s.srv.Close()
	<-s.done
	return err
}

type connKey struct{}

// takeOver runs session, for the connection r came on, in the goroutine
// that handed the connection to ServeConn, once the handler has returned;
// session gets ServeConn's context. A handler that has hijacked the
// connection (a WebSocket upgrade) calls it and returns, so that an idle
// WebSocket keeps none of net/http's per-request state. Outside ServeConn,
// session runs at once.
func takeOver(r *http.Request, session func(context.Context)) {
	if hc, ok := connOf(r).(*httpConn); ok {
		hc.takeover <- session
		return
	}
	session(r.Context())
}

// connOf is the connection a request came on (with the listener's Abort
// and PeerStatusWord), for handlers that take it over.
func connOf(r *http.Request) net.Conn {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	return c
}

// httpConn tells ServeConn when the connection is closed, by net/http or by
// whoever hijacked it.
type httpConn struct {
	net.Conn
	ctx      context.Context
	hijacked atomic.Bool
	detached atomic.Bool // by the session, which outlives ServeConn
	once     sync.Once
	closed   chan struct{}
	takeover chan func(context.Context)
}

func (c *httpConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

func (c *httpConn) Abort() error {
	err := abort(c.Conn)
	c.once.Do(func() { close(c.closed) })
	return err
}

func (c *httpConn) PeerStatusWord() string { return peerStatus(c.Conn) }

// Detach lets the session that took the connection over outlive ServeConn
// (the hub parks a quiet WebSocket client, and the goroutine that ran
// ServeConn returns): it passes on the listener's own Detach
// (secure.Conn's) and returns what ends the connection, nil when the
// connection under c cannot be detached. Call it from the session.
func (c *httpConn) Detach() (end func()) {
	d, ok := c.Conn.(hub.Detacher)
	if !ok {
		return nil
	}
	endConn := d.Detach()
	if endConn == nil {
		return nil
	}
	c.detached.Store(true)
	return func() {
		c.Close()
		endConn()
	}
}

// NetConn is the connection under c.
func (c *httpConn) NetConn() net.Conn { return c.Conn }

// connListener hands net/http the connections ServeConn receives.
type connListener struct {
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return connAddr{} }

type connAddr struct{}

func (connAddr) Network() string { return "passerelle" }
func (connAddr) String() string  { return "listener" }

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
