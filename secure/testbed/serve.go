package testbed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/passerelle/passerelle/protocol/echo"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
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
func (t *Testbed) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer t.closeListeners()

	httpSrv := t.httpServer(ctx)
	fail := make(chan error, 2+len(t.endpoints))
	var loops, handlers sync.WaitGroup
	loops.Go(func() {
		if err := httpSrv.Serve(t.httpLn); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			fail <- fmt.Errorf("testbed: HTTP server: %w", err)
		}
	})
	sni := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			ep, ok := t.byName[strings.ToLower(strings.TrimSuffix(h.ServerName, "."))]
			if !ok {
				return nil, &UnknownServerNameError{Name: h.ServerName}
			}
			return ep.tls, nil
		},
	}
	loops.Go(func() {
		if err := t.acceptLoop(ctx, t.sniLn, sni, nil, &handlers); err != nil {
			fail <- err
		}
	})
	for _, ep := range t.endpoints {
		loops.Go(func() {
			if err := t.acceptLoop(ctx, ep.ln, ep.tls, ep, &handlers); err != nil {
				fail <- err
			}
		})
	}
	t.log.Info("testbed serving", "http_address", t.HTTPAddress(), "sni_address", t.SNIAddress(), "endpoints", len(t.endpoints), "ca_file", t.caFile)

	var err error
	select {
	case <-ctx.Done():
	case err = <-fail:
	}
	cancel() // handlers close their connections on cancellation
	t.closeListeners()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = httpSrv.Shutdown(sctx)
	scancel()
	loops.Wait()
	handlers.Wait()
	t.log.Info("testbed stopped")
	return err
}

// acceptLoop accepts on ln until ctx is done. ep is nil on the SNI port,
// where the endpoint is known only after the handshake. Accept errors are
// retried with a growing back-off (as net/http does), so a burst of
// "too many open files" does not spin the CPU.
func (t *Testbed) acceptLoop(ctx context.Context, ln net.Listener, cfg *tls.Config, ep *endpoint, handlers *sync.WaitGroup) error {
	var delay time.Duration
	for {
		select {
		case t.sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		raw, err := ln.Accept()
		if err != nil {
			<-t.sem
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("accept failed", "address", ln.Addr().String(), "error", err, "retry_in", delay)
			timer := time.NewTimer(delay)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return nil
			}
			continue
		}
		delay = 0
		handlers.Go(func() {
			defer func() { <-t.sem }()
			t.handle(ctx, raw, cfg, ep)
		})
	}
}

// handle runs one connection: the handshake under a deadline, then the
// endpoint's service.
func (t *Testbed) handle(ctx context.Context, raw net.Conn, cfg *tls.Config, ep *endpoint) {
	if ep != nil && ep.noTLS != withTLS {
		t.handleNoTLS(ctx, raw, ep)
		return
	}
	conn := tls.Server(raw, cfg)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	log := t.log.With("remote_addr", raw.RemoteAddr().String(), "local_addr", raw.LocalAddr().String())
	hctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	err := conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		// Most failures here are the point of the testbed: a client that
		// rejects the certificate aborts the handshake.
		log.Info("handshake ended", "endpoint", nameOf(ep), "error", err)
		return
	}
	state := conn.ConnectionState()
	if ep == nil {
		ep = t.byName[strings.ToLower(strings.TrimSuffix(state.ServerName, "."))]
		if ep == nil { // GetConfigForClient guarantees a match
			return
		}
	}
	log = log.With("endpoint", ep.name, "server_name", state.ServerName)

	if ep.clientAuth == ClientAuthNone {
		// The echo service of seed 001, policy requests included, like every
		// passerelle listener.
		log.Debug("connected", "tls_version", tls.VersionName(state.Version))
		(&echo.Server{Logger: log}).ServeConn(ctx, conn)
		return
	}
	v := t.judgeClient(ctx, state.PeerCertificates)
	log.Info("client certificate judged", "status", string(v.Status), "subject", subjectOf(v.Leaf()), "reason", v.Reason)
	msg := verdictMessage(ep.name, v)
	if err := t.writeWithDeadline(conn, msg); err != nil {
		log.Info("verdict not delivered", "error", err)
		return
	}
	t.echoFrames(conn, log)
}

// handleNoTLS serves the endpoints that never complete a handshake.
func (t *Testbed) handleNoTLS(ctx context.Context, raw net.Conn, ep *endpoint) {
	log := t.log.With("remote_addr", raw.RemoteAddr().String(), "local_addr", raw.LocalAddr().String(), "endpoint", ep.name)
	switch ep.noTLS {
	case plainText:
		// A TLS client's ClientHello meets "Connected." in clear text,
		// which is no TLS record: the client fails its handshake.
		(&echo.Server{Logger: log}).ServeConn(ctx, raw)
	case silent:
		defer raw.Close()
		stop := context.AfterFunc(ctx, func() { raw.Close() })
		defer stop()
		// Read and drop whatever comes, answer nothing, until the client
		// gives up or the idle timeout passes.
		buf := make([]byte, 4096)
		for {
			if err := raw.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout)); err != nil {
				return
			}
			if _, err := raw.Read(buf); err != nil {
				log.Debug("silent connection closed", "error", err)
				return
			}
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
// prefix, so an XMLSocket client sees one reply per message. A policy
// request as the first message is answered with the default policy, then the
// connection closes, as on every passerelle listener.
func (t *Testbed) echoFrames(c net.Conn, log *slog.Logger) {
	r := xmlsocket.NewReader(c, maxFrame)
	for first := true; ; first = false {
		if err := c.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout)); err != nil {
			return
		}
		frame, err := r.ReadFrame()
		if err != nil {
			logClose(log, err)
			return
		}
		if first && policy.IsRequest(frame) {
			if err := t.writeWithDeadline(c, policy.Response(policy.Default())); err != nil {
				log.Debug("connection closed", "error", err)
			}
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
