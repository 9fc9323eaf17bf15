package secure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"
)

// recordTypeHandshake is the first byte of every TLS ClientHello record
// (RFC 8446 section 5.1, RFC 5246 section 6.2.1).
const recordTypeHandshake = 0x16

// plainHint is written to a client that sends plain text to a TLS port, the
// way net/http answers plain HTTP on an HTTPS port.
const plainHint = "passerelle: this port speaks TLS; connect with a TLS client (SecureSocket, openssl s_client)\n"

// handshake runs one connection's TLS handshake under a deadline and judges
// the client certificate. It returns the connection for the handler, or nil
// when the connection ended there (refused, failed, timed out, or answered
// by PlainFallback); it has then closed it.
func (st *serveState) handshake(ctx context.Context, raw net.Conn) *Conn {
	if st.cfg.Plain {
		return &Conn{Conn: raw, verdict: Verdict{Status: StatusUnknown}}
	}
	ok := false
	defer func() {
		if !ok {
			raw.Close()
		}
	}()
	log := st.cfg.Logger.With("remote_addr", raw.RemoteAddr().String())
	deadline := time.Now().Add(st.cfg.HandshakeTimeout)
	raw.SetDeadline(deadline)

	// Peek at the first byte: a client speaking plain text is told so (or
	// handed to PlainFallback) instead of failing deep in the handshake.
	var first [1]byte
	if _, err := io.ReadFull(raw, first[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			log.Info("client sent nothing before the handshake timeout; closing", "timeout", st.cfg.HandshakeTimeout)
		} else {
			log.Debug("client closed before the handshake", "error", err)
		}
		return nil
	}
	pc := &replayConn{Conn: raw, first: first[0], pending: true}
	if first[0] != recordTypeHandshake {
		if st.cfg.PlainFallback != nil {
			st.cfg.PlainFallback(ctx, pc)
			return nil
		}
		log.Info("client sent plain text to a TLS port; closing", "first_byte", fmt.Sprintf("%#02x", first[0]))
		io.WriteString(raw, plainHint)
		return nil
	}

	// The handshake context bounds the judgement too: revocation and AIA
	// fetches for a client certificate end with the handshake deadline.
	hsCtx, cancel := context.WithDeadline(ctx, deadline)
	verdict := Verdict{Status: StatusUnknown}
	var refused error
	policy := st.cfg.policy()
	tc := st.tls.Clone()
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		verdict, refused = st.judgeClient(hsCtx, policy, cs)
		return refused
	}
	tc.GetConfigForClient = alpnFallback(tc)
	if st.cfg.GetClientPolicy != nil {
		tc.GetConfigForClient = withClientPolicy(tc, st.cfg.GetClientPolicy, &policy)
	}
	conn := tls.Server(pc, tc)
	err := conn.HandshakeContext(hsCtx)
	cancel()
	if err != nil {
		switch {
		case refused != nil:
			log.Warn("client refused", "status", verdict.Status, "reason", refusalReason(verdict, refused))
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
			log.Info("tls handshake timed out; closing", "timeout", st.cfg.HandshakeTimeout)
		default:
			log.Info("tls handshake failed", "error", err)
		}
		return nil
	}
	raw.SetDeadline(time.Time{})
	cs := conn.ConnectionState()
	log.Debug("tls handshake done", "server_name", cs.ServerName, "tls_version", tls.VersionName(cs.Version),
		"cipher_suite", tls.CipherSuiteName(cs.CipherSuite), "peer_status", verdict.Status)
	// The connection keeps its configuration for life; drop the hooks
	// that hold the handshake's state (its context, the policy, the
	// verdict variables) so an idle client does not keep them.
	tc.VerifyConnection = nil
	tc.GetConfigForClient = nil
	ok = true
	return &Conn{Conn: conn, tlsConn: conn, verdict: verdict}
}

// judgeClient classifies the client certificate, if any, and decides whether
// the client may go on. It runs inside the handshake (VerifyConnection), so a
// refusal is a bad_certificate alert the client sees at once.
func (st *serveState) judgeClient(ctx context.Context, p ClientPolicy, cs tls.ConnectionState) (Verdict, error) {
	verdict := Verdict{Status: StatusUnknown}
	if len(cs.PeerCertificates) > 0 {
		verdict = Classify(ctx, cs.PeerCertificates, VerifyOptions{
			Roots:       p.ClientCAs,
			AcceptNames: p.ClientNames,
			Role:        RoleClient,
			NoAIAFetch:  !st.cfg.FetchClientIssuers,
			Revocation:  st.cfg.Revocation,
			CRLs:        p.CRLs,
			HTTPClient:  st.cfg.HTTPClient,
			Logger:      st.cfg.Logger,
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

// replayConn gives back the byte peeked before the handshake.
type replayConn struct {
	net.Conn
	first   byte
	pending bool
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.pending && len(p) > 0 {
		p[0] = c.first
		c.pending = false
		return 1, nil
	}
	return c.Conn.Read(p)
}

// withClientPolicy asks get for the client-certificate policy of a
// ClientHello, stores it in *policy for judgeClient, and returns tc adjusted
// to it (and to alpnFallback).
func withClientPolicy(tc *tls.Config, get func(*tls.ClientHelloInfo) (ClientPolicy, error), policy *ClientPolicy) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	alpn := alpnFallback(tc)
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		p, err := get(hello)
		if err != nil {
			return nil, err
		}
		c := tc
		if alpn != nil {
			if a, _ := alpn(hello); a != nil {
				c = a
			}
		}
		c = c.Clone()
		c.GetConfigForClient = nil
		if err := setClientAuth(c, p); err != nil {
			return nil, err
		}
		*policy = p
		return c, nil
	}
}

// alpnFallback lets a client whose ALPN offer shares nothing with the
// server's NextProtos in without ALPN. crypto/tls would otherwise end such a
// handshake with no_application_protocol (RFC 7301 section 3.2 allows either),
// and a listener that offers "acme-tls/1" only to answer ACME's TLS-ALPN-01
// challenge (RFC 8737) must not refuse a chat client offering, say, "xmpp".
func alpnFallback(tc *tls.Config) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	if len(tc.NextProtos) == 0 {
		return nil
	}
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		for _, p := range hello.SupportedProtos {
			if slices.Contains(tc.NextProtos, p) {
				return nil, nil
			}
		}
		if len(hello.SupportedProtos) == 0 {
			return nil, nil
		}
		c := tc.Clone()
		c.NextProtos = nil
		c.GetConfigForClient = nil
		return c, nil
	}
}
