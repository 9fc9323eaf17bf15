package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/secure/allow"
	"github.com/passerelle/passerelle/web"
)

// Defaults of Config.
const (
	DefaultAddress          = "127.0.0.1"
	DefaultBasePort         = 10400
	defaultHandshakeTimeout = 10 * time.Second
	defaultIdleTimeout      = 5 * time.Minute
	defaultMaxConns         = 1000
	// NameSuffix follows the endpoint name in its server name:
	// "expired" + NameSuffix = "expired.testbed.localhost". Names under
	// .localhost stay on the machine (RFC 6761 section 6.3).
	NameSuffix = ".testbed.localhost"
	// clientNamePattern is the allow-list of the client-certificate
	// endpoints: a trusted client certificate whose common name does not
	// match it is judged principalMismatch.
	clientNamePattern = "*.clients.testbed.localhost"
)

// Config configures a testbed. The zero value is usable once Dir is set.
type Config struct {
	// Dir holds the persisted testbed root (ca.crt, ca.key) and the serials
	// of revoked client certificates. Required; "passerelle testbed" uses
	// <data_dir>/testbed.
	Dir string
	// Address is the host every listener binds, default 127.0.0.1.
	Address string
	// BasePort is the first port: HTTP on BasePort, the SNI port on
	// BasePort+1, endpoint i on BasePort+2+i. Zero puts every listener on
	// an ephemeral port (tests).
	BasePort int
	// KeyType of every certificate made at start (default ecdsa-p256).
	KeyType certs.KeyType
	// HandshakeTimeout bounds each TLS handshake (default 10s).
	HandshakeTimeout time.Duration
	// IdleTimeout closes an endpoint's connection silent for that long
	// (default 5m), and bounds each write of a client-certificate endpoint.
	IdleTimeout time.Duration
	// MaxConns bounds concurrent connections over all listeners (default 1000).
	MaxConns int
	// Logger receives one line per connection; nil discards.
	Logger *slog.Logger
	// Now is the clock certificates are dated from (default time.Now).
	// Client certificates are judged at the time of the handshake, as
	// secure.Server judges them.
	Now func() time.Time
}

// Testbed is a set of listening endpoints, ready to Serve. New binds every
// port and makes every certificate, so the manifest is complete before the
// first connection.
type Testbed struct {
	cfg       Config
	log       *slog.Logger
	root      *issuer
	inter     *issuer
	extra     []*issuer // issuers made for one endpoint, published too
	rootPool  *x509.CertPool
	allow     allow.List
	caFile    string
	baseURL   string
	httpLn    net.Listener
	sniLn     net.Listener
	endpoints []*endpoint
	byName    map[string]*endpoint // by lower-case server name
	limit     *secure.Limiter      // one connection limit over every port
	policy    *policy.Gate         // the policy-file request, on every port
	pages     *web.ConnServer      // the endpoints' pages for browsers, while serving
	dashboard []byte               // the dashboard page, rendered by New

	revokedMu  sync.Mutex // guards revokedMod
	revokedMod time.Time  // mtime of the revoked-clients file last read
}

// endpoint is one endpoint at run time.
type endpoint struct {
	plan
	info Endpoint
	ln   net.Listener
	// getCertificate serves the endpoint's certificate (nil without TLS).
	getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// page is the endpoint's page for browsers, rendered by New.
	page []byte
}

// New loads or creates the testbed root in cfg.Dir, binds every listener and
// issues every endpoint's certificate. Close releases the listeners if Serve
// is never called.
func New(cfg Config) (_ *Testbed, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("testbed: no folder for the testbed root (Config.Dir)")
	}
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.BasePort < 0 || cfg.BasePort+firstEndpointOffset+len(plans) > 65536 {
		return nil, fmt.Errorf("testbed: base port %d: the %d ports from it must lie within 1-65535", cfg.BasePort, firstEndpointOffset+len(plans))
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = defaultHandshakeTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := checkKeyType(cfg.KeyType); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	t := &Testbed{
		cfg:    cfg,
		log:    orDiscard(cfg.Logger),
		allow:  allow.List{CommonNames: []string{clientNamePattern}},
		byName: make(map[string]*endpoint),
		// One pool of connections for every port.
		limit:  secure.NewLimiter(cfg.MaxConns, cfg.MaxConns, cfg.Logger),
		policy: &policy.Gate{Logger: cfg.Logger, PeerLog: ratelog.New(cfg.Logger, 0)},
	}
	defer func() {
		if err != nil {
			t.closeListeners()
		}
	}()
	if err := t.listen(); err != nil {
		return nil, err
	}
	if err := t.makeAuthorities(); err != nil {
		return nil, err
	}
	if err := t.makeEndpoints(); err != nil {
		return nil, err
	}
	if err := t.renderPages(); err != nil {
		return nil, err
	}
	return t, nil
}

// listen binds the HTTP, SNI and endpoint ports.
func (t *Testbed) listen() error {
	port := func(off int) string {
		if t.cfg.BasePort == 0 {
			return "0"
		}
		return strconv.Itoa(t.cfg.BasePort + off)
	}
	bind := func(off int, what string) (net.Listener, error) {
		addr := net.JoinHostPort(t.cfg.Address, port(off))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("testbed: listen on %s for %s: %w", addr, what, err)
		}
		return ln, nil
	}
	var err error
	if t.httpLn, err = bind(httpOffset, "the HTTP server (AIA, CRL, OCSP)"); err != nil {
		return err
	}
	if t.sniLn, err = bind(sniOffset, "the SNI port"); err != nil {
		return err
	}
	for i, p := range plans {
		ln, err := bind(firstEndpointOffset+i, "endpoint "+p.name)
		if err != nil {
			return err
		}
		t.endpoints = append(t.endpoints, &endpoint{plan: p, ln: ln})
	}
	t.baseURL = "http://" + net.JoinHostPort(t.urlHost(), portOf(t.httpLn))
	return nil
}

// urlHost is the host put in URLs inside certificates: the bound address,
// or loopback when bound to every interface.
func (t *Testbed) urlHost() string {
	if ip := net.ParseIP(t.cfg.Address); ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return t.cfg.Address
}

func portOf(ln net.Listener) string {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// makeAuthorities loads the persisted root and makes this start's
// intermediate, each with its revocation list, OCSP responder and CRL.
func (t *Testbed) makeAuthorities() error {
	root, created, err := loadOrCreateRoot(t.cfg.Dir, t.cfg.KeyType, t.cfg.Now())
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	t.caFile, err = filepath.Abs(filepath.Join(t.cfg.Dir, rootCertName))
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	if created {
		t.log.Info("testbed root created", "ca_file", t.caFile)
	}
	if t.root, err = newIssuer(root, t.cfg.Now); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	t.rootPool = x509.NewCertPool()
	t.rootPool.AddCert(root.cert)
	now := t.cfg.Now()
	cert, key, err := issue(t.cfg.KeyType, root, certSpec{
		commonName: "passerelle testbed intermediate",
		notBefore:  now.Add(-skew),
		notAfter:   now.Add(2 * leafLifetime),
		isCA:       true,
		// The intermediate itself can be checked for revocation too.
		ocspServer: []string{t.baseURL + "/ocsp/root"},
		crlDP:      []string{t.baseURL + "/crl/root.crl"},
	})
	if err != nil {
		return fmt.Errorf("testbed: intermediate: %w", err)
	}
	if t.inter, err = newIssuer(&authority{name: "intermediate", cert: cert, key: key}, t.cfg.Now); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	return t.syncRevokedClients()
}

// issuers are the authorities whose certificate, CRL and OCSP responder the
// HTTP server publishes.
func (t *Testbed) issuers() []*issuer {
	return append([]*issuer{t.root, t.inter}, t.extra...)
}

// makeEndpoints issues each endpoint's certificate and TLS configuration.
func (t *Testbed) makeEndpoints() error {
	b := &builder{
		kt:           t.cfg.KeyType,
		now:          t.cfg.Now(),
		baseURL:      t.baseURL,
		names:        t.names,
		root:         t.root,
		intermediate: t.inter,
		clock:        t.cfg.Now,
	}
	sniAddr := t.sniLn.Addr().String()
	for _, ep := range t.endpoints {
		b.endpoint = ep.name
		var m material
		if ep.noTLS == withTLS {
			var err error
			if m, err = ep.build(b); err != nil {
				return fmt.Errorf("testbed: %w", err)
			}
		}
		ep.info = Endpoint{
			Name:                 ep.name,
			Address:              ep.ln.Addr().String(),
			SNIAddress:           sniAddr,
			ServerName:           serverName(ep.name),
			ExpectedStatus:       ep.status,
			CAFile:               t.caFile,
			ClientCert:           ep.clientAuth != ClientAuthNone,
			ClientAuth:           ep.clientAuth,
			OpenSSLVerifyCode:    ep.openssl,
			OpenSSLVerifyText:    osslText[ep.openssl],
			OpenSSLStatus:        ep.status,
			NeedsAIAFetch:        ep.needsAIA,
			NeedsRevocationCheck: ep.needsRevoke,
			Description:          ep.description,
		}
		if ep.osslStatus != "" {
			ep.info.OpenSSLStatus = ep.osslStatus
		}
		if ep.noTLS != withTLS {
			ep.info.SNIAddress = ""
			continue
		}
		ep.getCertificate = t.certificate(ep, m)
		if ep.ipOnly {
			ep.info.SNIAddress, ep.info.ServerName = "", ipServerName(ep.ln.Addr())
			continue
		}
		t.byName[normalName(ep.info.ServerName)] = ep
	}
	t.extra = b.extra
	return nil
}

// certificate serves the certificate of one endpoint. The stapled endpoint
// asks the responder at each handshake; the responder caches its signed
// answer until half its validity has passed, so the staple never goes stale
// on a long run.
func (t *Testbed) certificate(ep *endpoint, m material) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert := m.cert
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if cert.OCSPStaple == nil {
			return &cert, nil
		}
		c := cert
		staple, err := t.root.responder.Response(cert.Leaf.SerialNumber)
		if err != nil {
			return nil, fmt.Errorf("testbed: staple for %s: %w", ep.name, err)
		}
		c.OCSPStaple = staple
		return &c, nil
	}
}

// ipServerName is what a client of an IP-only endpoint asks for: the bound
// address, or 127.0.0.1 when it is bound to every address.
func ipServerName(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP != nil && !ta.IP.IsUnspecified() {
		return ta.IP.String()
	}
	return "127.0.0.1"
}

// serverName is the SNI name of an endpoint.
func serverName(endpoint string) string { return endpoint + NameSuffix }

// names returns what a leaf for endpoint covers: its server name,
// localhost, the loopback addresses and the bound address.
func (t *Testbed) names(endpoint string) ([]string, []net.IP) {
	dns := []string{serverName(endpoint), "localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ip := net.ParseIP(t.cfg.Address); ip != nil {
		if !ip.IsUnspecified() && !ip.IsLoopback() {
			ips = append(ips, ip)
		}
	} else if !strings.EqualFold(t.cfg.Address, "localhost") {
		dns = append(dns, t.cfg.Address)
	}
	return dns, ips
}

// Endpoints returns the manifest entries, in port order.
func (t *Testbed) Endpoints() []Endpoint {
	out := make([]Endpoint, len(t.endpoints))
	for i, ep := range t.endpoints {
		out[i] = ep.info
	}
	return out
}

// CAFile is the absolute path of the testbed root (PEM) clients must trust.
func (t *Testbed) CAFile() string { return t.caFile }

// HTTPAddress is the host:port of the HTTP server (AIA issuers, CRLs, OCSP,
// manifest).
func (t *Testbed) HTTPAddress() string { return t.httpLn.Addr().String() }

// SNIAddress is the host:port where the server name picks the endpoint.
func (t *Testbed) SNIAddress() string { return t.sniLn.Addr().String() }

// Close releases the listeners. Serve calls it on return; calling it
// without Serve releases the ports.
func (t *Testbed) Close() error {
	t.closeListeners()
	return nil
}

func (t *Testbed) closeListeners() {
	for _, ln := range t.listeners() {
		ln.Close()
	}
}

func (t *Testbed) listeners() []net.Listener {
	var out []net.Listener
	for _, ln := range []net.Listener{t.httpLn, t.sniLn} {
		if ln != nil {
			out = append(out, ln)
		}
	}
	for _, ep := range t.endpoints {
		out = append(out, ep.ln)
	}
	return out
}

// WriteCAFile copies the root PEM to path (--ca-out) and makes the manifest
// point at that copy.
func (t *Testbed) WriteCAFile(path string) error {
	if err := certs.WriteFileAtomic(path, certs.MarshalCertsPEM(t.root.cert), 0o644); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	t.caFile = abs
	for _, ep := range t.endpoints {
		ep.info.CAFile = abs
	}
	return nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
