package testbed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/passerelle/passerelle/protocol/echo"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/web"
)

// maxFrame bounds an XMLSocket frame echoed by a client-certificate endpoint.
const maxFrame = 64 << 10

// UnknownServerNameError is the reason a handshake on the SNI port fails: the
// client asked for no name, or for a name no endpoint has.
type UnknownServerNameError struct{ Name string }

func (e *UnknownServerNameError) Error() string {
	if e.Name == "" {
		return "no server name (SNI) sent: on the SNI port the server name picks the endpoint, e.g. trusted" + NameSuffix
	}
	return fmt.Sprintf("no testbed endpoint is named %q (want <endpoint>%s)", e.Name, NameSuffix)
}

// Serve runs the HTTP server, the SNI port and every endpoint until ctx is
// cancelled, then closes the listeners and every connection and returns once
// every handler has returned. It returns nil after a cancellation, or the
// first error that stopped a listener.
//
// Every port but HTTP is a secure.Server: it owns the accept loop, the
// handshake deadline, the judgement of client certificates and the
// shutdown. What the testbed adds is which certificate and client-auth
// policy each connection gets (per endpoint, or per server name on the SNI
// port) and what is said after the handshake.
func (t *Testbed) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer t.closeListeners()

	// The HTTP port's requests, and browsers' connections to the
	// endpoints, for their pages; the header timeout is the handshake's,
	// as on every passerelle listener.
	httpConns := web.NewConnServer(t.httpHandler(), t.cfg.HandshakeTimeout, t.log)
	defer httpConns.Close()
	t.pages = web.NewConnServer(pageHandler(), t.cfg.HandshakeTimeout, t.log)
	defer t.pages.Close()
	fail := make(chan error, 2+len(t.endpoints))
	var loops sync.WaitGroup
	serve := func(ln net.Listener, srv *secure.Server) {
		loops.Go(func() {
			if err := srv.Serve(ctx, ln); err != nil {
				fail <- fmt.Errorf("testbed: %w", err)
			}
		})
	}
	serve(t.httpLn, &secure.Server{Config: secure.ServerConfig{
		Plain:            true,
		HandshakeTimeout: t.cfg.HandshakeTimeout,
		Limiter:          t.limit,
		Logger:           t.log.With("endpoint", "http", "local_addr", t.httpLn.Addr().String()),
	}, Handler: func(ctx context.Context, c *secure.Conn) { httpConns.ServeConn(ctx, c) }})
	serve(t.sniLn, t.server(t.sniLn, nil))
	for _, ep := range t.endpoints {
		serve(ep.ln, t.server(ep.ln, ep))
	}
	t.log.Info("testbed serving", "http_address", t.HTTPAddress(), "sni_address", t.SNIAddress(), "endpoints", len(t.endpoints), "ca_file", t.caFile)

	var err error
	select {
	case <-ctx.Done():
	case err = <-fail:
	}
	cancel() // each secure.Server closes its listener and waits for its handlers
	t.closeListeners()
	loops.Wait()
	t.log.Info("testbed stopped")
	return err
}

// server is the secure.Server of one port: endpoint ep's own port, or the
// SNI port when ep is nil, where the server name picks the endpoint.
func (t *Testbed) server(ln net.Listener, ep *endpoint) *secure.Server {
	cfg := secure.ServerConfig{
		HandshakeTimeout: t.cfg.HandshakeTimeout,
		Limiter:          t.limit,
		Preface:          t.policy.Check,
		Logger:           t.log.With("endpoint", nameOf(ep), "local_addr", ln.Addr().String()),
	}
	if ep != nil && ep.noTLS != withTLS {
		cfg.Plain = true
		return &secure.Server{Config: cfg, Handler: func(ctx context.Context, c *secure.Conn) { t.handle(ctx, c, ep) }}
	}
	// A browser negotiates http/1.1 and gets the endpoint's page; other
	// clients offer no ALPN and get the endpoint's service.
	cfg.NextProtos = []string{web.ALPN}
	pick := func(*tls.ClientHelloInfo) (*endpoint, error) { return ep, nil }
	if ep == nil {
		pick = t.endpointByName
	}
	// Most handshake failures are the point of the testbed: a client that
	// rejects the certificate aborts the handshake, and secure.Server logs
	// it. Client certificates are judged by secure.Server too, against the
	// testbed root and its current CRL; the allow-list is applied after
	// (clientVerdict) because a name outside it is told, not refused.
	cfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		e, err := pick(h)
		if err != nil {
			return nil, err
		}
		return e.getCertificate(h)
	}
	cfg.GetClientPolicy = func(h *tls.ClientHelloInfo) (secure.ClientPolicy, error) {
		e, err := pick(h)
		if err != nil {
			return secure.ClientPolicy{}, err
		}
		return t.clientPolicy(e), nil
	}
	return &secure.Server{Config: cfg, Handler: func(ctx context.Context, c *secure.Conn) {
		e := ep
		if e == nil {
			// GetClientPolicy refused every name without an endpoint.
			e = t.byName[normalName(c.TLS().ServerName)]
		}
		t.handle(ctx, c, e)
	}}
}

// endpointByName is the endpoint a ClientHello names on the SNI port.
func (t *Testbed) endpointByName(h *tls.ClientHelloInfo) (*endpoint, error) {
	ep, ok := t.byName[normalName(h.ServerName)]
	if !ok {
		return nil, &UnknownServerNameError{Name: h.ServerName}
	}
	return ep, nil
}

// normalName is a server name as byName holds it: lower case, no final dot.
func normalName(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// clientPolicy is how endpoint ep asks for client certificates. The testbed's
// "require" is secure.ClientAuthRequireAny: a client without a certificate is
// refused, but a bad one is let in to hear its verdict.
func (t *Testbed) clientPolicy(ep *endpoint) secure.ClientPolicy {
	var p secure.ClientPolicy
	switch ep.clientAuth {
	case ClientAuthNone:
		return p
	case ClientAuthRequest:
		p.ClientAuth = secure.ClientAuthRequest
	case ClientAuthRequire:
		p.ClientAuth = secure.ClientAuthRequireAny
	}
	p.ClientCAs = t.rootPool
	p.CRLs = t.clientCRLs()
	return p
}

// handle runs an endpoint's service once the handshake is done (or at once,
// for the endpoints without TLS).
func (t *Testbed) handle(ctx context.Context, c *secure.Conn, ep *endpoint) {
	// The echo service writes remote_addr in its own lines: its logger
	// gets the endpoint only.
	echoLog := t.log.With("endpoint", ep.name)
	log := t.log.With("remote_addr", c.RemoteAddr().String(), "endpoint", ep.name)
	switch {
	case ep.noTLS == plainText:
		// A TLS client's ClientHello meets "Connected." in clear text,
		// which is no TLS record: the client fails its handshake.
		(&echo.Server{Logger: echoLog, IdleTimeout: t.cfg.IdleTimeout}).ServeConn(ctx, c)
		return
	case ep.noTLS == silent:
		t.silence(ctx, c, log)
		return
	}
	state := c.TLS()
	if state.NegotiatedProtocol == web.ALPN {
		t.servePage(ctx, c, ep)
		return
	}
	log = log.With("server_name", state.ServerName)
	if ep.clientAuth == ClientAuthNone {
		// The echo service of the OpenFL/AIR socket chapter (seed 001); the
		// policy request was answered before the handshake, as on every
		// passerelle listener.
		log.Debug("connected", "tls_version", tls.VersionName(state.Version))
		echoLog = echoLog.With("server_name", state.ServerName)
		(&echo.Server{Logger: echoLog, IdleTimeout: t.cfg.IdleTimeout}).ServeConn(ctx, c)
		return
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	v := t.clientVerdict(c.PeerVerdict())
	log.Info("client certificate judged", "status", string(v.Status), "subject", subjectOf(v.Leaf()), "reason", v.Reason)
	if err := t.writeWithDeadline(c, verdictMessage(ep.name, v)); err != nil {
		log.Info("verdict not delivered", "error", err)
		return
	}
	t.echoFrames(c, log)
}

// silence reads and drops whatever comes, answering nothing, until the
// client gives up, the idle timeout passes or the testbed stops.
func (t *Testbed) silence(ctx context.Context, c net.Conn, log *slog.Logger) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, 4096)
	for {
		if err := c.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout)); err != nil {
			return
		}
		if _, err := c.Read(buf); err != nil {
			log.Debug("silent connection closed", "error", err)
			return
		}
	}
}

func nameOf(ep *endpoint) string {
	if ep == nil {
		return "(sni)"
	}
	return ep.name
}

func (t *Testbed) writeWithDeadline(c net.Conn, b []byte) error {
	if err := c.SetWriteDeadline(time.Now().Add(t.cfg.IdleTimeout)); err != nil {
		return err
	}
	_, err := c.Write(b)
	return err
}

// echoFrames is the echo of the client-certificate endpoints, which speak
// XMLSocket: each NUL-terminated frame comes back whole behind the echo
// prefix, so an XMLSocket client sees one reply per message. (A policy
// request never gets here: every port answers it before the handshake,
// as on every passerelle listener.)
func (t *Testbed) echoFrames(c net.Conn, log *slog.Logger) {
	r := xmlsocket.NewReader(c, maxFrame)
	for {
		if err := c.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout)); err != nil {
			return
		}
		frame, err := r.ReadFrame()
		if err != nil {
			logClose(log, err)
			return
		}
		if err := t.writeWithDeadline(c, append([]byte(echo.Prefix), frame...)); err != nil {
			log.Debug("connection closed", "error", err)
			return
		}
	}
}

func logClose(log *slog.Logger, err error) {
	var tooLarge *xmlsocket.FrameTooLargeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		log.Debug("connection closed")
	case errors.As(err, &tooLarge):
		log.Info("connection closed: frame too large", "error", err)
	default:
		log.Debug("connection closed", "error", err)
	}
}
