package secure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ClientConfig configures Dial, the SecureSocket side.
type ClientConfig struct {
	// ServerName is the name sent in SNI and checked against the server's
	// certificate; empty means the host part of the address.
	ServerName string
	// RootCAs are the trusted roots; nil means the system roots.
	RootCAs *x509.CertPool
	// Certificates are offered to a server that asks for a client
	// certificate: the first one the server's request accepts, else the
	// first one.
	Certificates []tls.Certificate
	// NextProtos is the ALPN list offered (RFC 7301); empty offers none.
	NextProtos []string
	// Revocation is the revocation mode; the zero value is soft-fail.
	Revocation RevocationMode
	// CRLs are revocation lists held locally, consulted before fetching.
	CRLs []*x509.RevocationList
	// NoAIAFetch turns off fetching a missing intermediate.
	NoAIAFetch bool
	// HTTPClient fetches issuers, OCSP responses and CRLs; nil means a
	// client with a 5 second timeout.
	HTTPClient *http.Client
	// Dialer opens the TCP connection; nil means a plain net.Dialer.
	Dialer *net.Dialer
	// Now, if set, replaces time.Now when judging dates.
	Now func() time.Time
	// Logger receives debug lines; nil discards.
	Logger *slog.Logger
}

// ClientConn is an established client connection whose server certificate
// was judged trusted.
type ClientConn struct {
	*tls.Conn
	verdict       Verdict
	certRequested bool
}

// ClientCertRequested reports whether the server asked for a client
// certificate during the handshake. In TLS 1.3 a server judges that
// certificate after the client has finished, so a refusal shows up as an
// alert on the first Read, not as a Dial error.
func (c *ClientConn) ClientCertRequested() bool { return c.certRequested }

// Status is the server certificate's status (always StatusTrusted on a
// connection Dial returned).
func (c *ClientConn) Status() Status { return c.verdict.Status }

// Verdict is the whole judgement on the server's certificate.
func (c *ClientConn) Verdict() Verdict { return c.verdict }

// HandshakeError is the error of a failed TLS handshake. Verdict says what
// was thought of the server's certificate: its Status is the one AIR reads
// after an IOError, and its Certificates are what the server presented.
type HandshakeError struct {
	Verdict Verdict
	// State is the connection state when the server's certificate was judged
	// (version, cipher suite, ALPN, stapled OCSP response), nil when the
	// handshake failed before that.
	State *tls.ConnectionState
	Err   error
}

func (e *HandshakeError) Error() string {
	if e.Verdict.Status != StatusTrusted && e.Verdict.Reason != "" && e.Err != nil && errors.Is(e.Err, errUntrusted) {
		return fmt.Sprintf("tls handshake: server certificate %s: %s", e.Verdict.Status, e.Verdict.Reason)
	}
	return fmt.Sprintf("tls handshake: %v", e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// errUntrusted marks a handshake this side stopped because of the verdict.
var errUntrusted = errors.New("peer certificate not trusted")

// Dial connects to addr over TCP, runs the TLS handshake and judges the
// server's certificate with Classify. It returns a connection only when the
// verdict is trusted. A failed handshake returns a *HandshakeError carrying
// the verdict; a failed TCP connection returns the dial error as is.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*ClientConn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	d := cfg.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c, err := Client(ctx, raw, host, cfg)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

// Client runs the client handshake over an established connection. host is
// the name used when cfg.ServerName is empty. On error the caller closes raw.
func Client(ctx context.Context, raw net.Conn, host string, cfg ClientConfig) (*ClientConn, error) {
	serverName := cfg.ServerName
	if serverName == "" {
		serverName = host
	}
	verdict := Verdict{Status: StatusUnknown, Name: serverName}
	judged := false
	var state *tls.ConnectionState
	tc := baseConfig()
	tc.ServerName = serverName
	certRequested := false
	// Offer a certificate even when the server's list of acceptable CAs
	// (RFC 8446 section 4.2.4) does not name its issuer: the server is the
	// judge, and a server that reports verdicts (the testbed) must see it.
	tc.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		certRequested = true
		if len(cfg.Certificates) == 0 {
			return &tls.Certificate{}, nil // none: an empty Certificate message
		}
		for i := range cfg.Certificates {
			if cri.SupportsCertificate(&cfg.Certificates[i]) == nil {
				return &cfg.Certificates[i], nil
			}
		}
		return &cfg.Certificates[0], nil
	}
	tc.NextProtos = cfg.NextProtos
	// crypto/tls's own verification is replaced by Classify, so that every
	// defect is named, not only the first one crypto/x509 meets.
	tc.InsecureSkipVerify = true
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		opts := VerifyOptions{
			Roots:      cfg.RootCAs,
			Name:       serverName,
			Role:       RoleServer,
			Revocation: cfg.Revocation,
			OCSPStaple: cs.OCSPResponse,
			CRLs:       cfg.CRLs,
			NoAIAFetch: cfg.NoAIAFetch,
			HTTPClient: cfg.HTTPClient,
			Logger:     cfg.Logger,
		}
		if cfg.Now != nil {
			opts.Now = cfg.Now()
		}
		verdict = Classify(ctx, cs.PeerCertificates, opts)
		judged = true
		state = &cs
		if verdict.Status != StatusTrusted {
			return fmt.Errorf("%w: %s: %s", errUntrusted, verdict.Status, verdict.Reason)
		}
		return nil
	}
	conn := tls.Client(raw, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		switch {
		case judged:
		case isTimeout(err):
			// No answer is no verdict: the status stays unknown.
			verdict.Reason = "no TLS handshake answer before the deadline"
		default:
			// The handshake failed before any certificate was judged
			// (protocol version, cipher suites, a non-TLS server, an alert):
			// AIR calls that invalid.
			verdict = verdict.with(StatusInvalid, "handshake failed: "+err.Error())
		}
		orDiscard(cfg.Logger).Debug("tls handshake failed", "remote_addr", raw.RemoteAddr().String(),
			"server_name", serverName, "status", verdict.Status, "reason", verdict.Reason)
		return nil, &HandshakeError{Verdict: verdict, State: state, Err: err}
	}
	return &ClientConn{Conn: conn, verdict: verdict, certRequested: certRequested}, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &ne) && ne.Timeout())
}
