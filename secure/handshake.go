package secure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/passerelle/passerelle/internal/peekconn"
	"github.com/passerelle/passerelle/internal/ratelog"
)

// recordTypeHandshake is the first byte of every TLS ClientHello record
// (RFC 8446 section 5.1, RFC 5246 section 6.2.1).
const recordTypeHandshake = 0x16

// plainHint is written to a client that sends plain text to a TLS port, the
// way net/http answers plain HTTP on an HTTPS port.
const plainHint = "passerelle: this port speaks TLS; connect with a TLS client (SecureSocket, openssl s_client)\n"

// buildTLS makes the listener's TLS configurations, once. No configuration
// is changed after it is handed to crypto/tls: base, the one every
// tls.Server gets, is tmpl plus GetConfigForClient, which returns a fresh
// clone of tmpl for a connection that needs hooks of its own (a client
// certificate to judge, an ALPN offer to drop), and nil for the others
// (configForClient). Session tickets are encrypted with base's keys, which
// crypto/tls creates and rotates itself (a new key every day, the previous
// ones kept for a week to decrypt): a per-connection configuration without
// keys of its own uses those of the original one.
func (st *serveState) buildTLS() error {
	tmpl := baseConfig()
	tmpl.GetCertificate = st.cfg.GetCertificate
	tmpl.NextProtos = st.cfg.NextProtos
	if err := setClientAuth(tmpl, st.cfg.policy()); err != nil {
		return err
	}
	st.tmpl = tmpl
	// base is the template itself plus the hook: a connection that needs
	// nothing of its own (no client certificate asked for, no Authorize,
	// an ALPN offer the listener shares) is handshaken with base as it is,
	// without a clone.
	st.base = tmpl.Clone()
	st.base.GetConfigForClient = st.configForClient
	return nil
}

// hsState is one connection's handshake: what configForClient and
// VerifyConnection need and what they find out. The connection handed to
// tls.Server carries it, as ClientHelloInfo.Conn.
type hsState struct {
	ctx     context.Context
	policy  ClientPolicy
	verdict Verdict
	refused error
}

// configForClient builds one connection's TLS configuration: the client
// policy (fixed, or from GetClientPolicy), the ALPN fallback, and the hook
// that judges the client certificate into the connection's hsState.
func (st *serveState) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	pc, ok := hello.Conn.(*replayConn)
	if !ok || pc.hs == nil {
		return nil, errors.New("secure: handshake on a connection the server did not prepare")
	}
	hs := pc.hs
	hs.policy = st.cfg.policy()
	if st.cfg.GetClientPolicy != nil {
		p, err := st.cfg.GetClientPolicy(hello)
		if err != nil {
			return nil, err
		}
		hs.policy = p
	}
	if hs.policy.ClientAuth == ClientAuthNone && st.base.ClientAuth == tls.NoClientCert &&
		st.cfg.Authorize == nil && alpnOverlap(st.base.NextProtos, hello.SupportedProtos) {
		// Nothing to judge: no client certificate is asked for, and
		// judgeClient would find the verdict unknown and let it in.
		return nil, nil
	}
	c := st.tmpl.Clone()
	if err := setClientAuth(c, hs.policy); err != nil {
		return nil, err
	}
	if !alpnOverlap(c.NextProtos, hello.SupportedProtos) {
		c.NextProtos = nil
	}
	// The hook finds the handshake's state through the connection, which
	// drops it once the handshake is over: the configuration, kept by the
	// connection for life, then holds nothing of it.
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		hs := pc.hs
		if hs == nil {
			return errors.New("secure: certificate verification after the handshake")
		}
		hs.verdict, hs.refused = st.judgeClient(hs.ctx, hs.policy, cs)
		return hs.refused
	}
	return c, nil
}

// open takes one accepted connection through everything before its handler:
// the PROXY header (ServerConfig.ProxyProtocol), the Preface, and on a TLS
// listener the handshake and the judgement of the client certificate, all
// under the handshake deadline. It returns the connection for the handler,
// or nil when the connection ended there (refused, failed, timed out, or
// answered by the Preface); it has then closed it. A balancer's connection
// is counted against its client's address here; releaseAddr, when not nil,
// gives that back.
func (st *serveState) open(ctx context.Context, raw net.Conn, balancer bool, listenAddr string) (_ *Conn, releaseAddr func()) {
	ok := false
	defer func() {
		if !ok {
			raw.Close()
		}
	}()
	deadline := time.Now().Add(st.cfg.HandshakeTimeout)
	raw.SetDeadline(deadline)
	// The PROXY header, the Preface and the handshake share one deadline.
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if len(st.cfg.ProxyProtocol) > 0 {
		var pass bool
		if raw, releaseAddr, pass = st.proxyHeader(raw, balancer, listenAddr, deadline); !pass {
			return nil, nil
		}
	}
	if st.cfg.Plain {
		c := raw
		if st.cfg.Preface != nil {
			next, goOn := st.cfg.Preface(ctx, raw)
			if !goOn {
				return nil, releaseAddr
			}
			c = next
		}
		raw.SetDeadline(time.Time{})
		ok = true
		return &Conn{Conn: c, raw: raw, verdict: Verdict{Status: StatusUnknown}}, releaseAddr
	}
	// The remote address goes into the lines written, not into a logger
	// made for each connection: most handshakes log nothing.
	log := connLogger{st.cfg.Logger, st.peerLog, raw}
	pc := st.peekRecord(ctx, raw, log, deadline)
	if pc == nil {
		return nil, releaseAddr
	}
	c := st.handshake(ctx, cancel, pc, raw, log, deadline)
	ok = c != nil
	return c, releaseAddr
}

// proxyHeader reads the PROXY protocol header that starts raw, and returns
// the connection with the client's address it tells, and for a balancer's
// client the release of its place under the client's address. pass is
// false when the header or the address is refused (said in the log).
func (st *serveState) proxyHeader(raw net.Conn, balancer bool, listenAddr string, deadline time.Time) (_ net.Conn, releaseAddr func(), pass bool) {
	if st.cfg.Plain && !balancer {
		// A plain client may never speak first: checked as it is read.
		return &lazyUnlisted{Conn: peekconn.New(raw), refuse: func(err error) { st.refuseProxy(raw, false, err) }}, nil, true
	}
	pc, err := readProxyHeader(raw, balancer)
	if err != nil {
		if !st.cfg.Plain {
			st.observeHandshake(HandshakeProxyHeader, StatusUnknown, deadline)
		}
		st.refuseProxy(raw, balancer, err)
		return raw, nil, false
	}
	if balancer {
		releaseAddr, err = st.cfg.Limiter.admitAddress(pc.RemoteAddr(), listenAddr)
		if err != nil {
			st.observeRefused(err)
			return pc, nil, false
		}
	}
	return pc, releaseAddr, true
}

// refuseProxy says in the log why raw was refused for its PROXY header.
// Any address can send a header: one line per kind per interval, with the
// count. A listed balancer that sends none or a bad one is a configuration
// to fix: a warning.
func (st *serveState) refuseProxy(raw net.Conn, balancer bool, err error) {
	var ph errProxyHeader
	kind := "proxy_error"
	if errors.As(err, &ph) {
		kind = ph.kind
	}
	say := st.peerLog.Warn
	if !balancer {
		say = st.peerLog.Info
	}
	say(kind, "connection refused: "+err.Error(), "remote_addr", raw.RemoteAddr().String(), "outcome", HandshakeProxyHeader)
}

// peekRecord peeks at the first byte of raw: a client speaking plain text
// is told so (or handed to the Preface) instead of failing deep in the
// handshake. It returns the connection that replays the byte to the
// handshake, or nil when there is to be none.
func (st *serveState) peekRecord(ctx context.Context, raw net.Conn, log connLogger, deadline time.Time) *replayConn {
	pc := &replayConn{Conn: peekconn.New(raw)}
	var err error
	for len(pc.Peeked()) == 0 && err == nil {
		_, err = pc.Fill(1)
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			st.observeHandshake(HandshakeTimeout, StatusUnknown, deadline)
			log.Limited(slog.LevelInfo, "handshake_silent", "client sent nothing before the handshake timeout; closing", "outcome", HandshakeTimeout, "timeout", st.cfg.HandshakeTimeout)
		} else {
			st.observeHandshake(HandshakeClosed, StatusUnknown, deadline)
			log.Debug("client closed before the handshake", "outcome", HandshakeClosed, "error", err)
		}
		return nil
	}
	if first := pc.Peeked()[0]; first != recordTypeHandshake {
		if st.cfg.Preface != nil {
			if _, notMine := st.cfg.Preface(ctx, pc.Conn); !notMine {
				st.observeHandshake(HandshakePreface, StatusUnknown, deadline)
				return nil
			}
		}
		st.observeHandshake(HandshakePlainText, StatusUnknown, deadline)
		log.Limited(slog.LevelInfo, "plain_text", "client sent plain text to a TLS port; closing", "outcome", HandshakePlainText, "first_byte", fmt.Sprintf("%#02x", first))
		io.WriteString(raw, plainHint)
		return nil
	}
	return pc
}

// handshake runs the TLS handshake on pc within ctx (cancelled once it
// ends) and returns the connection, or nil when it failed (said in the log
// and the metrics).
func (st *serveState) handshake(ctx context.Context, cancel context.CancelFunc, pc *replayConn, raw net.Conn, log connLogger, deadline time.Time) *Conn {
	// The handshake context bounds the judgement too: revocation and AIA
	// fetches for a client certificate end with the handshake deadline.
	hs := &hsState{ctx: ctx, verdict: Verdict{Status: StatusUnknown}}
	pc.hs = hs
	conn := tls.Server(pc, st.base)
	err := conn.HandshakeContext(ctx)
	cancel()
	verdict, refused := hs.verdict, hs.refused
	pc.hs = nil // what only the handshake needed
	if err != nil {
		switch {
		case refused != nil:
			st.observeHandshake(HandshakeRefused, verdict.Status, deadline)
			log.Limited(slog.LevelWarn, "client_refused_"+string(verdict.Status), "client refused", "status", verdict.Status, "reason", refusalReason(verdict, refused))
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
			st.observeHandshake(HandshakeTimeout, StatusUnknown, deadline)
			log.Limited(slog.LevelInfo, "handshake_timeout", "tls handshake timed out; closing", "outcome", HandshakeTimeout, "timeout", st.cfg.HandshakeTimeout)
		default:
			st.observeHandshake(HandshakeFailed, verdict.Status, deadline)
			log.Limited(slog.LevelInfo, "handshake_failed", "tls handshake failed", "outcome", HandshakeFailed, "error", err)
		}
		return nil
	}
	raw.SetDeadline(time.Time{})
	st.observeHandshake(HandshakeOK, verdict.Status, deadline)
	if st.cfg.Logger.Enabled(ctx, slog.LevelDebug) {
		cs := conn.ConnectionState()
		log.Debug("tls handshake done", "server_name", cs.ServerName, "tls_version", tls.VersionName(cs.Version),
			"cipher_suite", tls.CipherSuiteName(cs.CipherSuite), "peer_status", verdict.Status)
	}
	return &Conn{Conn: conn, raw: raw, tlsConn: conn, verdict: verdict}
}

// connLogger writes one connection's log lines with its remote_addr.
// Debug lines go out as they come; the lines a peer can cause at a higher
// level go through the listener's rate-limited logger (Limited), one of
// each kind per interval with the count of the others, so that a flood of
// connections is a few lines, not one each.
type connLogger struct {
	l   *slog.Logger
	rl  *ratelog.Logger
	raw net.Conn
}

func (c connLogger) Debug(msg string, args ...any) { c.log(slog.LevelDebug, msg, args) }

// Limited writes a line of kind key through the rate-limited logger.
func (c connLogger) Limited(level slog.Level, key, msg string, args ...any) {
	c.rl.LogTo(context.Background(), c.l, level, key, msg, append([]any{"remote_addr", c.raw.RemoteAddr().String()}, args...)...)
}

func (c connLogger) log(level slog.Level, msg string, args []any) {
	ctx := context.Background()
	if !c.l.Enabled(ctx, level) {
		return
	}
	c.l.Log(ctx, level, msg, append([]any{"remote_addr", c.raw.RemoteAddr().String()}, args...)...)
}

// judgeClient classifies the client certificate, if any, and decides whether
// the client may go on. It runs inside the handshake (VerifyConnection), so a
// refusal is a bad_certificate alert the client sees at once.
func (st *serveState) judgeClient(ctx context.Context, p ClientPolicy, cs tls.ConnectionState) (Verdict, error) {
	verdict := Verdict{Status: StatusUnknown}
	if len(cs.PeerCertificates) > 0 {
		verdict = Classify(ctx, cs.PeerCertificates, VerifyOptions{
			Roots:           p.ClientCAs,
			AcceptNames:     p.ClientNames,
			Role:            RoleClient,
			NoAIAFetch:      !st.cfg.FetchClientIssuers,
			Revocation:      st.cfg.Revocation,
			CRLs:            p.CRLs,
			HTTPClient:      st.cfg.HTTPClient,
			RevocationCache: st.revocation,
			Logger:          st.cfg.Logger,
		})
	}
	if p.ClientAuth == ClientAuthRequire && verdict.Status != StatusTrusted {
		if len(cs.PeerCertificates) == 0 {
			verdict.Reason = "no client certificate presented"
		}
		return verdict, fmt.Errorf("%w: client certificate %s", errUntrusted, verdict.Status)
	}
	if st.cfg.Authorize != nil {
		if err := st.cfg.Authorize(verdict); err != nil {
			return verdict, fmt.Errorf("not authorized: %w", err)
		}
	}
	return verdict, nil
}

func refusalReason(v Verdict, err error) string {
	if errors.Is(err, errUntrusted) && v.Reason != "" {
		return v.Reason
	}
	return err.Error()
}

// replayConn gives back the byte peeked before the handshake, and carries
// the connection's handshake state to configForClient.
type replayConn struct {
	*peekconn.Conn
	hs *hsState
}

// alpnOverlap reports whether a client's ALPN offer shares a protocol with
// the server's. A client whose offer shares nothing is let in without ALPN:
// crypto/tls would otherwise end its handshake with no_application_protocol
// (RFC 7301 section 3.2 allows either), and a listener that offers
// "acme-tls/1" only to answer ACME's TLS-ALPN-01 challenge (RFC 8737) must
// not refuse a chat client offering, say, "xmpp".
func alpnOverlap(server, client []string) bool {
	if len(server) == 0 || len(client) == 0 {
		return true
	}
	for _, p := range client {
		if slices.Contains(server, p) {
			return true
		}
	}
	return false
}
