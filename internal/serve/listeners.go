package serve

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/metrics"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/secure/allow"
)

// listener is one row of serve's listener table: an entry of listeners,
// the master policy listener (policy.listen) or the admin listener
// (admin.address). serve's steps gather its parts (the files it names, its
// certificate source, its bound address, its metrics observer); build
// then makes its secure.Server from all of them at once. build is the only
// place a listener's secure.ServerConfig is written.
type listener struct {
	cfg listenerConfig
	log *slog.Logger

	proxy     []netip.Prefix
	clientCAs *x509.CertPool
	authorize func(secure.Verdict) error
	// localClientCA is set when tls.client_ca_file is the local CA's own
	// certificate and the CA does not exist yet: it is read once the
	// certificate manager has made it (readLocalClientCAs).
	localClientCA string
	assets        envoie.Files      // an envoie listener's folder
	source        *certs.Source     // nil: plain TCP
	ln            net.Listener      // bound by bind
	obs           *metrics.Listener // nil: no admin listener, no metrics
	srv           *secure.Server    // made by build
	closers       []io.Closer
}

// listenerSet is every row of the table, in order, and what they share.
type listenerSet struct {
	all        []*listener
	limiter    *secure.Limiter
	policyFile []byte // policy.file's document, or nil
}

// prepareListeners reads every file the rows name (client CA bundles, the
// policy file, asset folders) and returns all the errors at once. Nothing
// is created, ordered or bound yet.
func prepareListeners(cfg *Config, rows []listenerConfig, log *slog.Logger) (*listenerSet, error) {
	set := &listenerSet{}
	var errs []error
	if cfg.Policy.File != "" {
		doc, err := os.ReadFile(cfg.Policy.File)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy.file: %w", err))
		} else if err := policy.Validate(doc); err != nil {
			errs = append(errs, fmt.Errorf("policy.file %s: %w", cfg.Policy.File, err))
		} else {
			set.policyFile = doc
		}
	}
	// One limit for all of serve's listeners, as one process has one set
	// of file descriptors.
	set.limiter = secure.NewLimiter(cfg.Limits.MaxConns, cfg.Limits.MaxConnsPerAddress, log)
	for _, lc := range rows {
		l := &listener{cfg: lc, log: log.With("listener", lc.Address, "service", lc.Service)}
		proxy, err := secure.ParseProxyProtocol(lc.ProxyProtocol)
		if err != nil { // validate names the bad entry; this is its backstop
			errs = append(errs, fmt.Errorf("%s proxy_protocol: %w", lc.Address, err))
		}
		l.proxy = proxy
		if err := l.readClientAuth(cfg.DataDir); err != nil {
			errs = append(errs, err)
		}
		if err := l.openAssets(); err != nil {
			errs = append(errs, err)
		}
		set.all = append(set.all, l)
	}
	if err := errors.Join(errs...); err != nil {
		set.close()
		return nil, err
	}
	return set, nil
}

// openAssets opens an envoie listener's folder (the embedded samples when
// it names none); the folder stays open (os.Root) while serve runs.
func (l *listener) openAssets() error {
	if l.cfg.Service != serviceEnvoie {
		return nil
	}
	if l.cfg.Root == "" {
		l.assets = envoie.Samples()
		return nil
	}
	dir, err := envoie.OpenDir(l.cfg.Root, envoie.WithDotfiles(l.cfg.AllowDotfiles))
	if err != nil {
		return fmt.Errorf("%s: %w", l.cfg.rootKey(l.cfg.key), err)
	}
	l.assets = dir
	l.closers = append(l.closers, dir)
	return nil
}

// readClientAuth reads the client CA bundle and the allow-list.
func (l *listener) readClientAuth(dataDir string) error {
	t := l.cfg.TLS
	if t.ClientCAFile != "" {
		localCA := filepath.Join(certs.CADir(dataDir), certs.CACertFileName)
		if _, err := os.Stat(t.ClientCAFile); errors.Is(err, fs.ErrNotExist) && filepath.Clean(t.ClientCAFile) == filepath.Clean(localCA) {
			// Client certificates from the local CA, which serve
			// creates on its first start.
			l.localClientCA = t.ClientCAFile
		} else if err := l.readClientCAs(t.ClientCAFile); err != nil {
			return err
		}
	}
	if !t.Allow.Empty() {
		l.authorize = allow.Authorize(t.Allow)
	}
	return nil
}

func (l *listener) readClientCAs(file string) error {
	pool, err := certs.AddCAFile(nil, l.cfg.key+".tls.client_ca_file", file)
	if err != nil {
		return err
	}
	l.clientCAs = pool
	return nil
}

// readLocalClientCAs reads the client CA bundles that are the local CA's
// certificate, once the certificate manager has made it.
func (s *listenerSet) readLocalClientCAs() error {
	for _, l := range s.all {
		if l.localClientCA != "" {
			if err := l.readClientCAs(l.localClientCA); err != nil {
				return err
			}
		}
	}
	return nil
}

// plain reports whether the listener serves plain TCP.
func (l *listener) plain() bool { return l.cfg.TLS.Mode == certs.ModeOff }

// certificates gets each TLS listener's certificate source, ordering ACME
// certificates as needed.
func (s *listenerSet) certificates(ctx context.Context, mgr *certs.Manager) error {
	for _, l := range s.all {
		if l.plain() {
			continue
		}
		t := l.cfg.TLS
		src, err := mgr.Source(ctx, certs.TLSSpec{Mode: t.Mode, Names: t.Names, CertFile: t.CertFile, KeyFile: t.KeyFile})
		if err != nil {
			return fmt.Errorf("listener %s: %w", l.cfg.Address, err)
		}
		l.source = src
	}
	return nil
}

// bind listens on every address, or on none if one fails.
func (s *listenerSet) bind() error {
	for _, l := range s.all {
		ln, err := net.Listen("tcp", l.cfg.Address)
		if err != nil {
			s.close()
			return fmt.Errorf("listen on %s: %w", l.cfg.Address, err)
		}
		l.ln = ln
	}
	return nil
}

// policyDoc is the cross-domain policy every listener answers: the policy
// file, or one allowing every domain to the ports really bound by the
// service listeners.
func (s *listenerSet) policyDoc() []byte {
	if s.policyFile != nil {
		return s.policyFile
	}
	var ports []int
	for _, l := range s.all {
		if tcp, ok := l.ln.Addr().(*net.TCPAddr); ok && l.cfg.Service != servicePolicy && l.cfg.Service != serviceAdmin {
			ports = append(ports, tcp.Port)
		}
	}
	return policy.Default(ports...)
}

// startServices makes each listener's service from the table, then its
// server.
func (s *listenerSet) startServices(svc *services) error {
	table := serviceTable()
	for _, l := range s.all {
		sv, err := table[l.cfg.Service](svc, l)
		if err != nil {
			return fmt.Errorf("listener %s: %w", l.cfg.Address, err)
		}
		if sv.closer != nil {
			l.closers = append(l.closers, sv.closer)
		}
		l.build(sv, svc.cfg.Limits.HandshakeTimeout, s.limiter)
	}
	return nil
}

// build makes the listener's server from its parts and its service: the
// one place its secure.ServerConfig is written, whole.
func (l *listener) build(sv service, handshakeTimeout time.Duration, shared *secure.Limiter) {
	c := secure.ServerConfig{
		ProxyProtocol:    l.proxy,
		HandshakeTimeout: handshakeTimeout,
		Limiter:          shared,
		Logger:           l.log,
		Plain:            l.plain(),
		ClientAuth:       l.cfg.TLS.ClientAuth,
		ClientCAs:        l.clientCAs,
		Authorize:        l.authorize,
		Preface:          sv.preface,
	}
	if sv.ownLimiter {
		c.Limiter = nil // Serve makes one of secure's defaults
	}
	if l.source != nil {
		c.GetCertificate = l.source.GetCertificate
		c.NextProtos = append(slices.Clone(l.source.NextProtos), sv.alpn...)
	}
	if l.obs != nil {
		c.Observer = l.obs
	}
	l.srv = &secure.Server{Config: c, Handler: sv.handle}
}

// describe is the line serve prints for the listener.
func (l *listener) describe() string {
	switch l.cfg.Service {
	case servicePolicy:
		return fmt.Sprintf("policy on %s", l.ln.Addr())
	case serviceAdmin:
		scheme := "https"
		if l.plain() {
			scheme = "http"
		}
		return fmt.Sprintf("admin on %s (%s): /metrics /healthz /readyz /debug/pprof/", l.ln.Addr(), scheme)
	}
	return fmt.Sprintf("%s on %s (tls %s)", l.cfg.Service, l.ln.Addr(), l.cfg.TLS.Mode)
}

// serve runs the listener's accept loop until ctx ends.
func (l *listener) serve(ctx context.Context) error {
	if err := l.srv.Serve(ctx, l.ln); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("listener %s: %w", l.ln.Addr(), err)
	}
	return nil
}

// close closes every bound address and what the services opened. It is
// safe to call more than once.
func (s *listenerSet) close() {
	if s == nil {
		return
	}
	for _, l := range s.all {
		if l.ln != nil {
			l.ln.Close()
		}
		for _, c := range l.closers {
			c.Close()
		}
		l.closers = nil
	}
}
