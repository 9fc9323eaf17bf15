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
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/passerelle/passerelle/certs/revocation"
	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/internal/retry"
)

// ClientAuth says whether a server asks for a client certificate.
type ClientAuth uint8

const (
	// ClientAuthNone does not ask for a client certificate.
	ClientAuthNone ClientAuth = iota
	// ClientAuthRequest asks for one and accepts every client; the handler
	// reads the verdict with Conn.PeerStatus.
	ClientAuthRequest
	// ClientAuthRequire refuses, during the handshake, a client that sends no
	// certificate or one whose verdict is not trusted.
	ClientAuthRequire
	// ClientAuthRequireAny refuses, during the handshake, a client that sends
	// no certificate (crypto/tls's certificate_required alert in TLS 1.3,
	// handshake_failure before), and lets in any certificate that is sent,
	// whatever its verdict: the handler reads it with Conn.PeerVerdict. It
	// is for servers whose job is to tell each client what is wrong with its
	// certificate (the certificate testbed); ParseClientAuth does not offer
	// it, as a listener guarding anything wants ClientAuthRequire.
	ClientAuthRequireAny
)

// ParseClientAuth reads "none", "request" and "require".
func ParseClientAuth(s string) (ClientAuth, error) {
	switch s {
	case "none", "":
		return ClientAuthNone, nil
	case "request":
		return ClientAuthRequest, nil
	case "require":
		return ClientAuthRequire, nil
	}
	return ClientAuthNone, fmt.Errorf("client auth %q: want none, request or require", s)
}

// UnmarshalText reads a tls.client_auth value as a configuration decoder
// meets it.
func (c *ClientAuth) UnmarshalText(text []byte) error {
	v, err := ParseClientAuth(string(text))
	if err != nil {
		return errors.New("want none, request or require")
	}
	*c = v
	return nil
}

func (c ClientAuth) String() string {
	switch c {
	case ClientAuthRequest:
		return "request"
	case ClientAuthRequire:
		return "require"
	case ClientAuthRequireAny:
		return "require-any"
	default:
		return "none"
	}
}

// Defaults of ServerConfig.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultShutdownGrace    = 5 * time.Second
)

// ServerConfig configures a Server. The zero value is unusable only for lack
// of a certificate (GetCertificate) unless Plain is set.
type ServerConfig struct {
	// GetCertificate returns the certificate for a ClientHello (certs.Source
	// provides one). Required unless Plain.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// NextProtos is the ALPN list accepted (RFC 7301).
	NextProtos []string
	// ClientAuth asks for client certificates (default ClientAuthNone).
	ClientAuth ClientAuth
	// ClientCAs are the roots client certificates are judged against; nil
	// means the system roots.
	ClientCAs *x509.CertPool
	// GetClientPolicy, if set, is called with each ClientHello and returns
	// the client-certificate policy of that connection, in place of
	// ClientAuth, ClientCAs, ClientNames and CRLs. A listener that serves
	// several names can ask for different client certificates per name
	// (GetCertificate picking the server certificate by the same name), and
	// CRLs can change while the server runs. An error refuses the handshake
	// (internal_error alert) and is logged.
	GetClientPolicy func(*tls.ClientHelloInfo) (ClientPolicy, error)
	// Authorize, if set, is called with the verdict on the client
	// certificate of every TLS connection (StatusUnknown when none was sent,
	// including with ClientAuthNone); an error refuses the client during the
	// handshake, with a log line giving the error.
	Authorize func(Verdict) error
	// ClientNames, when not empty, are the names a client certificate must
	// cover one of (DNS, IP, e-mail or URI subjectAltName), else its status
	// is principalMismatch (see VerifyOptions.AcceptNames).
	ClientNames []string
	// Revocation is the revocation mode for client certificates (default
	// soft-fail); CRLs are revocation lists held locally.
	Revocation RevocationMode
	CRLs       []*x509.RevocationList
	// HTTPClient fetches issuers, OCSP responses and CRLs when judging
	// client certificates; nil means a client with a 5 second timeout. The
	// server keeps the OCSP responses and CRLs it fetched for a minute at
	// most, so a CRL is not downloaded again on every handshake.
	HTTPClient *http.Client
	// FetchClientIssuers lets the server follow the AIA caIssuers URL of a
	// client certificate whose issuer the client did not send (rule 3a).
	// Off by default: the URL is chosen by whoever made the certificate,
	// before anything about it is trusted, and a server should not fetch
	// arbitrary URLs on a stranger's word.
	FetchClientIssuers bool
	// HandshakeTimeout bounds everything before the handler: the Preface
	// and the TLS handshake, from accept on. A client that connects and
	// says nothing is dropped. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Limiter bounds the connections handled at once, in all and per client
	// address; several Servers may share one. When nil, Serve makes one from
	// MaxConns and MaxConnsPerAddress (see NewLimiter for their defaults).
	Limiter            *Limiter
	MaxConns           int
	MaxConnsPerAddress int
	// ShutdownGrace is how long Serve waits, once its context is cancelled,
	// for handlers to return before it closes their connections. Default
	// DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Plain turns TLS off: the handler gets the raw TCP connection (legacy
	// XMLSocket clients that cannot speak TLS).
	Plain bool
	// Preface, if set, reads what a client may send before the service's
	// own protocol (the Flash policy-file request: protocol/policy's
	// Gate.Check). It returns the connection to go on with (replaying any
	// bytes it read) and true, or false when it has dealt with the client
	// itself; the Server then closes the connection.
	//
	// On a plain listener every connection passes through it before the
	// handler. On a TLS listener it sees only a client whose first byte
	// cannot begin a TLS handshake record (0x16, RFC 8446 section 5.1);
	// if it hands such a client back, the client gets a one-line plain-text
	// hint that the port speaks TLS and is closed, so nothing but the
	// Preface's own short answer is ever served in clear on a TLS port.
	// The Preface runs under the handshake deadline.
	Preface func(ctx context.Context, c net.Conn) (net.Conn, bool)
	// ProxyProtocol lists the TCP load balancers in front of the listener
	// (IP prefixes; ParseProxyProtocol reads them). A connection from one
	// of them must start with a PROXY protocol header (version 1 or 2),
	// whose client address then stands for the connection's everywhere:
	// RemoteAddr, the per-address limit, every log line. A connection
	// from any other address that starts with such a header is refused
	// (on a Plain listener, when the handler reads it: a client there
	// may never speak first). Both refusals are logged with outcome
	// proxy_header. Empty: no header is read or looked for.
	ProxyProtocol []netip.Prefix
	// Logger receives one line per refused or failed connection; nil
	// discards.
	Logger *slog.Logger
	// Observer, if set, is told of every connection and handshake
	// (metrics); nil costs nothing.
	Observer Observer
}

// ClientPolicy is how one connection asks for and judges a client
// certificate; see the ServerConfig fields of the same names.
type ClientPolicy struct {
	ClientAuth  ClientAuth
	ClientCAs   *x509.CertPool
	ClientNames []string
	CRLs        []*x509.RevocationList
}

// Server accepts connections, runs the TLS handshake with a deadline, judges
// client certificates, and hands each connection to Handler. It is the one
// accept loop of passerelle: every listener of every service runs one.
type Server struct {
	Config  ServerConfig
	Handler func(ctx context.Context, c *Conn)
}

// Serve accepts on ln until ctx is cancelled, then closes ln, cancels the
// handlers' context, waits for them (up to ShutdownGrace, after which their
// connections are closed and it waits again) and returns nil. It returns an
// error if the configuration is unusable or the listener fails for good.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	st, err := s.newServeState()
	if err != nil {
		return err
	}
	connCtx, cancelConns := context.WithCancel(ctx)
	defer cancelConns()
	// Every connection's context (its handshake deadline, then its
	// handler's) is a child of one of these shards rather than of connCtx
	// itself: a child registers with its parent under the parent's mutex,
	// and with one parent for all, that mutex serialised every handshake
	// across cores (the mutex profile of BenchmarkHandshakeConcurrent).
	var shards [connShards]context.Context
	for i := range shards {
		var cancel context.CancelFunc
		shards[i], cancel = context.WithCancel(connCtx)
		defer cancel()
	}

	// Closing the listener is what unblocks Accept on shutdown.
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	if st.cfg.Observer != nil {
		st.cfg.Observer.Serving(ln.Addr())
	}
	var wg sync.WaitGroup
	acceptErr := st.acceptLoop(ctx, ln, &shards, &wg)
	cancelConns()
	st.waitHandlers(&wg, ln.Addr().String())
	return acceptErr
}

// newServeState checks s and fills in the defaults of its configuration.
func (s *Server) newServeState() (*serveState, error) {
	cfg := s.Config
	if s.Handler == nil {
		return nil, errors.New("secure: Server.Handler is nil")
	}
	if !cfg.Plain && cfg.GetCertificate == nil {
		return nil, errors.New("secure: ServerConfig.GetCertificate is nil and Plain is not set")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	cfg.Logger = orDiscard(cfg.Logger)
	if cfg.Limiter == nil {
		cfg.Limiter = NewLimiter(cfg.MaxConns, cfg.MaxConnsPerAddress, cfg.Logger)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newFetchClient()
	}
	st := &serveState{cfg: cfg, handler: s.Handler, conns: make(map[net.Conn]struct{}), revocation: newRevocationCache(),
		peerLog: ratelog.New(cfg.Logger, 0)}
	if !cfg.Plain {
		if err := st.buildTLS(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// acceptLoop accepts on ln until ctx ends or ln fails for good, which it
// returns; each connection is started on the next of shards, counted in wg.
func (st *serveState) acceptLoop(ctx context.Context, ln net.Listener, shards *[connShards]context.Context, wg *sync.WaitGroup) error {
	listenAddr := ln.Addr().String()
	retryAccept := retry.Backoff{Min: 5 * time.Millisecond, Max: time.Second}
	next := 0
	for ctx.Err() == nil {
		raw, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if !temporary(err) {
				return fmt.Errorf("accept on %s: %w", listenAddr, err)
			}
			// Temporary failures (EMFILE, ECONNABORTED...): back off
			// and try again, as net/http does.
			d := retryAccept.Next()
			st.cfg.Logger.Warn("accept failed; backing off", "listen_addr", listenAddr, "error", err, "retry_in", d)
			retry.Sleep(ctx, d)
			continue
		}
		retryAccept.Reset()
		if st.start(ctx, shards[next], raw, listenAddr, wg) {
			next = (next + 1) % connShards
		}
	}
	return nil
}

// start admits raw and runs its handshake and handler in goroutines of
// their own under shard; it reports false, raw closed, when raw was
// refused.
func (st *serveState) start(ctx, shard context.Context, raw net.Conn, listenAddr string, wg *sync.WaitGroup) bool {
	// Waiting here for a slot keeps further clients in the listen
	// backlog rather than accepting and dropping them. A balancer's
	// client is counted against its own address once its PROXY
	// header has told it (open), not against the balancer's.
	balancer := st.cfg.fromBalancer(raw.RemoteAddr())
	var release func()
	var err error
	if balancer {
		release, err = st.cfg.Limiter.admitSlot(ctx, listenAddr)
	} else {
		release, err = st.cfg.Limiter.admit(ctx, raw.RemoteAddr(), listenAddr)
	}
	if err != nil {
		st.observeRefused(err)
		raw.Close()
		return false
	}
	st.track(raw, true)
	st.observeConn(true)
	wg.Add(1)
	done := func() {
		st.track(raw, false)
		st.observeConn(false)
		release()
		wg.Done()
	}
	go func() {
		c, releaseAddr := st.open(shard, raw, balancer, listenAddr)
		finish := done
		if releaseAddr != nil {
			finish = func() { releaseAddr(); done() }
		}
		if c == nil {
			finish()
			return
		}
		// The handler gets a goroutine of its own so that the stack
		// the handshake grew (about 16 KiB) ends with this one: an
		// idle client then costs only what its handler's stack needs.
		// A handler that detached the connection (Conn.Detach) ends it
		// itself once it is done with it.
		c.finish = finish
		go func() {
			defer func() {
				if !c.detached {
					c.end()
				}
			}()
			st.handler(shard, c)
		}()
	}()
	return true
}

// waitHandlers waits for the handlers counted in wg, whose context is
// cancelled, up to ShutdownGrace; then it closes their connections and
// waits again.
func (st *serveState) waitHandlers(wg *sync.WaitGroup, listenAddr string) {
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	t := time.NewTimer(st.cfg.ShutdownGrace)
	defer t.Stop()
	select {
	case <-waited:
	case <-t.C:
		n := st.closeAll()
		st.cfg.Logger.Warn("handlers still running after shutdown grace; closing their connections",
			"listen_addr", listenAddr, "connections", n, "grace", st.cfg.ShutdownGrace)
		<-waited
	}
}

// connShards is the number of contexts the connections of one Serve are
// spread over (see Serve): enough that cores rarely meet on one.
const connShards = 64

// temporary reports whether an Accept error is worth retrying: running out
// of descriptors or buffers, or a connection aborted before it was
// accepted. Anything else (a closed or broken listener) ends Serve.
func temporary(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var t interface{ Temporary() bool }
	return !errors.Is(err, net.ErrClosed) && errors.As(err, &t) && t.Temporary()
}

// setClientAuth applies a client-certificate policy to a TLS configuration.
func setClientAuth(tc *tls.Config, p ClientPolicy) error {
	switch p.ClientAuth {
	case ClientAuthNone:
		tc.ClientAuth = tls.NoClientCert
	case ClientAuthRequest, ClientAuthRequire:
		// Require is enforced by judgeClient, so that a client without a
		// certificate is refused with the same log line as a bad one.
		tc.ClientAuth = tls.RequestClientCert
	case ClientAuthRequireAny:
		tc.ClientAuth = tls.RequireAnyClientCert
	default:
		return fmt.Errorf("secure: unknown ClientAuth %d", p.ClientAuth)
	}
	// Only used to fill the certificate_authorities hint of the
	// CertificateRequest (RFC 8446 section 4.2.4), so clients pick the right
	// certificate; verification is ours.
	tc.ClientCAs = p.ClientCAs
	return nil
}

// policy is the client-certificate policy of the configuration's fields.
func (cfg ServerConfig) policy() ClientPolicy {
	return ClientPolicy{ClientAuth: cfg.ClientAuth, ClientCAs: cfg.ClientCAs, ClientNames: cfg.ClientNames, CRLs: cfg.CRLs}
}

// serveState is what the accept loop shares with its connection goroutines.
type serveState struct {
	cfg     ServerConfig
	handler func(ctx context.Context, c *Conn)
	// base is the configuration every tls.Server gets; it holds only the
	// hook that builds each connection's own configuration from tmpl, and
	// the session ticket keys, which crypto/tls rotates on base and uses
	// for every connection (see buildTLS).
	base *tls.Config
	tmpl *tls.Config
	// revocation keeps the OCSP responses and CRLs fetched to judge
	// client certificates.
	revocation *revocation.Cache
	// peerLog writes the per-connection lines a peer can cause (a PROXY
	// header refused, plain text, silence, a failed handshake), one of
	// each kind per interval with a count.
	peerLog *ratelog.Logger

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (st *serveState) track(c net.Conn, add bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if add {
		st.conns[c] = struct{}{}
	} else {
		delete(st.conns, c)
	}
}

func (st *serveState) closeAll() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	for c := range st.conns {
		c.Close()
	}
	return len(st.conns)
}
