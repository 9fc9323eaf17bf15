package serve

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/passerelle/passerelle/certs"
)

// Load decodes serve's configuration from v (file, environment and flags,
// read and checked by ReadSettings; serve's flags bound to serve.*,
// policy.listen and admin.address) and validates it whole: every mistake is
// named before anything is created, ordered or bound.
func Load(v *viper.Viper) (*Config, error) {
	setServeDefaults(v)
	var cfg Config
	// Typed values (a TLS mode, a client-auth policy) read themselves from
	// text; ReadSettings has already checked them, so an error here is a
	// flag's.
	hooks := viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.TextUnmarshallerHookFunc(),
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	))
	if err := v.Unmarshal(&cfg, hooks); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if !v.IsSet("listeners") {
		cfg.Listeners = defaultListeners(v.GetString("serve.chat_address"), v.GetString("serve.assets_address"),
			v.GetString("serve.plain_address"), v.GetString("serve.echo_address"))
	}
	if assets := v.GetString("serve.assets"); assets != "" {
		for i := range cfg.Listeners {
			if cfg.Listeners[i].Service == serviceEnvoie && cfg.Listeners[i].Root == "" {
				cfg.Listeners[i].Root = assets
				cfg.Listeners[i].rootFrom = "--assets"
			}
		}
	}
	if cfg.Policy.Listen != "" {
		// The master policy listener is one more row of the table.
		cfg.Listeners = append(cfg.Listeners, listenerConfig{Address: cfg.Policy.Listen, Service: servicePolicy, TLS: tlsConfig{Mode: certs.ModeOff}, addressFrom: "policy.listen"})
	}
	cfg.normalize()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	return &cfg, nil
}

// Server is serve, put together by New and run by Run.
type Server struct {
	cfg *Config
	out io.Writer
	log *slog.Logger
	hup chan os.Signal

	set *listenerSet
	cl  *clusterLink
	mgr *certs.Manager
	svc *services
}

// New puts serve together from cfg, in order: read every file the
// configuration names (nothing created yet, every error at once), get the
// certificates of every row of the listener table, bind every row, then
// make the services and each listener's server. Nothing serves yet; Run
// does. It writes its announcements (the local CA) to out.
func New(ctx context.Context, cfg *Config, out io.Writer, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, out: out, log: log, hup: make(chan os.Signal, 1)}
	// SIGHUP is caught from the start: once a listener is announced, an
	// operator (or a script reading the announcement) may send it at once,
	// and Go's default for an uncaught SIGHUP ends the process.
	signal.Notify(s.hup, syscall.SIGHUP)
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.set, err = prepareListeners(cfg, cfg.table(), log); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("connection limits", "max_conns", s.set.limiter.MaxConns(), "max_conns_per_address", s.set.limiter.MaxConnsPerAddress())
	setGC(cfg.Runtime, log)
	if s.cl, err = startClusterLink(cfg, log); err != nil {
		return nil, err
	}
	s.mgr, err = certs.NewManager(ctx, certs.ManagerConfig{
		DataDir: cfg.DataDir,
		Storage: s.cl.certStorage(cfg),
		Logger:  log,
		ACME: certs.ACMEConfig{CA: cfg.ACME.CA, Email: cfg.ACME.Email, Agree: cfg.ACME.Agree, CARoot: cfg.ACME.CARoot,
			TLSALPNPort: cfg.ACME.TLSALPNPort, HTTPPort: cfg.ACME.HTTPPort, ListenHost: cfg.ACME.ListenHost, Profile: cfg.ACME.Profile},
	})
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	if err := announceLocalCA(out, cfg, s.mgr); err != nil {
		return nil, err
	}
	if err := s.set.readLocalClientCAs(); err != nil {
		return nil, err
	}
	// Certificates come before the addresses are bound, the admin
	// listener's too. The first ACME obtain answers TLS-ALPN-01 (RFC 8737)
	// through certmagic's own challenge server, which binds
	// acme.tls_alpn_port while the challenge lasts; were a listener already
	// bound to that port (and not yet serving), the CA would connect to it
	// and never get an answer, so a listener on :443 could never get its
	// first certificate. Once serving, a listener answers its renewals'
	// challenges itself (Source.GetCertificate).
	if err := s.set.certificates(ctx, s.mgr); err != nil {
		return nil, err
	}
	// Bind every address before serving any: a port taken fails the start
	// before any client is served, and the policy can name the ports
	// really bound.
	if err := s.set.bind(); err != nil {
		return nil, err
	}
	s.svc = newServices(cfg, s.set.policyDoc(), log)
	s.svc.link = s.cl.link()
	watchMetrics(s.set, s.svc, s.mgr, s.cl)
	if err := s.set.startServices(s.svc); err != nil {
		return nil, err
	}
	return s, nil
}

// Run announces every listener and serves until ctx is cancelled or a
// listener fails, reloading certificate files on SIGHUP; then it shuts
// down, waiting for the handlers, and releases everything New made.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(s.set.all))
	for _, l := range s.set.all {
		fmt.Fprintf(s.out, "passerelle: %s\n", l.describe())
		wg.Go(func() {
			if err := l.serve(ctx); err != nil {
				errc <- err
			}
		})
	}
	wg.Go(func() { releaseWhenQuiet(ctx, s.cfg.Runtime.ReleaseAfter, s.log) })
	runErr := awaitShutdown(ctx, errc, s.hup, s.mgr, s.log)
	s.log.Info("shutting down")
	cancel()
	s.svc.close()
	wg.Wait()
	return runErr
}

// close releases what New made, in the reverse order: the hub's clients,
// the cluster link (after the hub), the certificate manager, the bound
// addresses and what the services opened.
func (s *Server) close() {
	if s.svc != nil {
		s.svc.close()
	}
	s.cl.close()
	if s.mgr != nil {
		s.mgr.Close()
	}
	s.set.close()
	signal.Stop(s.hup)
}

// announceLocalCA tells the operator where the local CA is and how clients
// come to trust it, when a listener uses it.
func announceLocalCA(out io.Writer, cfg *Config, mgr *certs.Manager) error {
	if !usesLocalCA(cfg) {
		return nil
	}
	ca, created, err := mgr.LocalCA()
	if err != nil {
		return fmt.Errorf("local CA: %w", err)
	}
	verb := "using"
	if created {
		verb = "created"
	}
	fmt.Fprintf(out, "passerelle: %s local CA %s\n", verb, ca.CertFile())
	fmt.Fprintf(out, "passerelle: clients on this machine trust it with `passerelle%s ca install`, or give them that file (openssl s_client -CAfile %s)\n", DataDirFlag(cfg.DataDir), ca.CertFile())
	return nil
}

// awaitShutdown blocks until ctx ends or a listener fails, reloading
// certificate files on SIGHUP meanwhile (open connections stay up).
func awaitShutdown(ctx context.Context, errc <-chan error, hup <-chan os.Signal, mgr *certs.Manager, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-hup:
			if err := mgr.Reload(); err != nil {
				log.Error("reload certificates", "error", err)
			} else {
				log.Info("certificates reloaded")
			}
		}
	}
}

func usesLocalCA(cfg *Config) bool {
	for _, l := range cfg.Listeners {
		if l.TLS.Mode == certs.ModeLocal {
			return true
		}
	}
	return false
}

// DefaultDataDir is the data folder when none is given: the user's data
// folder + /passerelle.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "passerelle")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "passerelle")
	}
	return "passerelle-data"
}

// DataDirFlag is what a command printed as a hint needs to reach the data
// folder dir: nothing for the default folder, else " --data-dir DIR"
// (quoted for a POSIX shell when it must be), so that the hint does not
// send the user to another folder, and another CA.
func DataDirFlag(dir string) string {
	if filepath.Clean(dir) == filepath.Clean(DefaultDataDir()) {
		return ""
	}
	return " --data-dir " + shellQuote(dir)
}

// shellQuote quotes s for a POSIX shell unless it needs none.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:,@%=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
