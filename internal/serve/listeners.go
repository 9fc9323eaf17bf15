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
	"os"
	"path/filepath"
	"slices"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/secure/allow"
	"github.com/passerelle/passerelle/web"
)

// listener is one configured address and everything that serves it: its
// TLS source and client-certificate policy (server), its service's
// handler, and what must be closed when serve ends. A listener is built in
// steps (prepareListeners, certificates, bind, startServices) so that every
// configuration error shows before anything is created.
type listener struct {
	cfg     listenerConfig
	where   string // "listeners[2]", for messages
	log     *slog.Logger
	server  secure.ServerConfig
	ln      net.Listener
	handler func(context.Context, *secure.Conn)
	assets  envoie.Files // an envoie listener's folder
	// localClientCA is set when tls.client_ca_file is the local CA's own
	// certificate and the CA does not exist yet: it is read once the
	// certificate manager has made it (readLocalClientCAs).
	localClientCA string
	closers       []io.Closer
}

// listenerSet is every listener of serve, in configuration order, and what
// they share.
type listenerSet struct {
	all        []*listener
	limiter    *secure.Limiter
	policyFile []byte // policy.file's document, or nil
}

// prepareListeners reads every file the configuration names (client CA
// bundles, the policy file, asset folders) and returns all the errors at
// once. Nothing is created, ordered or bound yet.
func prepareListeners(cfg *Config, log *slog.Logger) (*listenerSet, error) {
	set := &listenerSet{}
	var errs []error
	if cfg.Policy.File != "" {
		doc, err := os.ReadFile(cfg.Policy.File)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("policy.file: %w", err))
		case policy.Validate(doc) != nil:
			errs = append(errs, fmt.Errorf("policy.file %s: %w", cfg.Policy.File, policy.Validate(doc)))
		default:
			set.policyFile = doc
		}
	}
	// One limit for all of serve's listeners, as one process has one set
	// of file descriptors.
	set.limiter = secure.NewLimiter(cfg.Limits.MaxConns, cfg.Limits.MaxConnsPerAddress, log)
	for i, lc := range cfg.Listeners {
		l := &listener{
			cfg:   lc,
			where: fmt.Sprintf("listeners[%d]", i),
			log:   log.With("listener", lc.Address, "service", lc.Service),
		}
		if lc.Service == servicePolicy {
			l.where = "policy.listen"
		}
		balancers, _ := secure.ParseProxyProtocol(lc.ProxyProtocol) // checked by validate
		l.server = secure.ServerConfig{
			ProxyProtocol:    balancers,
			HandshakeTimeout: cfg.Limits.HandshakeTimeout,
			Limiter:          set.limiter,
			Logger:           l.log,
			Plain:            lc.TLS.Mode == certs.ModeOff,
		}
		if err := l.prepareClientAuth(cfg.DataDir); err != nil {
			errs = append(errs, err)
		}
		if lc.Service == serviceEnvoie {
			l.assets = envoie.Samples()
			if lc.Root != "" {
				// The folder stays open (os.Root) while serve runs.
				dir, err := envoie.OpenDir(lc.Root, envoie.WithDotfiles(lc.AllowDotfiles))
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", lc.rootKey(l.where), err))
				} else {
					l.assets = dir
					l.closers = append(l.closers, dir)
				}
			}
		}
		set.all = append(set.all, l)
	}
	if err := errors.Join(errs...); err != nil {
		set.close()
		return nil, err
	}
	return set, nil
}

// prepareClientAuth reads the client CA bundle and sets the client
// certificate policy and allow-list.
func (l *listener) prepareClientAuth(dataDir string) error {
	t := l.cfg.TLS
	l.server.ClientAuth = t.ClientAuth
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
		l.server.Authorize = allow.Authorize(t.Allow)
	}
	return nil
}

func (l *listener) readClientCAs(file string) error {
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s.tls.client_ca_file: %w", l.where, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s.tls.client_ca_file %s: no PEM certificate in the file", l.where, file)
	}
	l.server.ClientCAs = pool
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

// certificates gets each TLS listener's certificate source, ordering ACME
// certificates as needed.
func (s *listenerSet) certificates(ctx context.Context, mgr *certs.Manager) error {
	for _, l := range s.all {
		if l.server.Plain {
			continue
		}
		t := l.cfg.TLS
		src, err := mgr.Source(ctx, certs.TLSSpec{Mode: t.Mode, Names: t.Names, CertFile: t.CertFile, KeyFile: t.KeyFile})
		if err != nil {
			return fmt.Errorf("listener %s: %w", l.cfg.Address, err)
		}
		l.server.GetCertificate = src.GetCertificate
		l.server.NextProtos = src.NextProtos
		if l.cfg.Service == serviceChat || l.cfg.Service == serviceEnvoie {
			// Browsers negotiate HTTP/1.1 and are answered as such
			// (WebSocket, the chat page, HTTPS assets).
			l.server.NextProtos = append(slices.Clone(src.NextProtos), web.ALPN)
		}
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
		if tcp, ok := l.ln.Addr().(*net.TCPAddr); ok && l.cfg.Service != servicePolicy {
			ports = append(ports, tcp.Port)
		}
	}
	return policy.Default(ports...)
}

// startServices makes each listener's service from the table.
func (s *listenerSet) startServices(svc *services) error {
	table := serviceTable()
	for _, l := range s.all {
		sv, err := table[l.cfg.Service](svc, l)
		if err != nil {
			return fmt.Errorf("listener %s: %w", l.cfg.Address, err)
		}
		l.handler = sv.handle
		if !l.server.Plain {
			// Before TLS: a policy request in clear on a TLS port (Flash
			// asks on the port it then uses for TLS). A plain listener's
			// clients go to the door at once (frontDoor), where the
			// request is told apart with everything else.
			l.server.Preface = svc.gate.Check
		}
		if sv.preface != nil {
			l.server.Preface = sv.preface
		}
		if sv.closer != nil {
			l.closers = append(l.closers, sv.closer)
		}
	}
	return nil
}

// describe is the line serve prints for the listener.
func (l *listener) describe() string {
	if l.cfg.Service == servicePolicy {
		return fmt.Sprintf("policy on %s", l.ln.Addr())
	}
	return fmt.Sprintf("%s on %s (tls %s)", l.cfg.Service, l.ln.Addr(), l.cfg.TLS.Mode)
}

// serve runs the listener's accept loop until ctx ends.
func (l *listener) serve(ctx context.Context) error {
	srv := &secure.Server{Config: l.server, Handler: l.handler}
	if err := srv.Serve(ctx, l.ln); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("listener %s: %w", l.ln.Addr(), err)
	}
	return nil
}

// close closes every bound address and what the services opened. It is
// safe to call more than once.
func (s *listenerSet) close() {
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
