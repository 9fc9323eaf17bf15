package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/protocol/echo"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/secure/allow"
)

func newServeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the encrypted chat relay and asset stream",
		Long: `serve runs passerelle's listeners until it is interrupted (SIGINT or SIGTERM).

With no configuration at all it creates, once, a local CA and a server
certificate for localhost, 127.0.0.1 and ::1 in the data folder, and serves over
TLS on loopback: the XMLSocket chat relay on 127.0.0.1:10000 and the ENVOIE asset
stream on 127.0.0.1:10001 (a small embedded sample set unless --assets names a
folder). Later starts reuse the same CA. A configuration file (--config) can
declare any set of listeners: chat, envoie or echo, each over TLS from the local
CA, ACME or files, or in plain TCP for legacy clients.

SIGHUP reloads certificate files (files mode) without dropping connections.`,
		Example: `  passerelle serve
  passerelle serve --assets ./public
  passerelle serve --chat-address 0.0.0.0:10000 --plain-address 127.0.0.1:9999
  passerelle --config configs/acme.yaml serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.serveConfig(cmd)
			if err != nil {
				return err
			}
			return runServe(cmd.Context(), cfg, a)
		},
	}
	f := cmd.Flags()
	f.String("assets", "", "folder served by the asset listener (default: the embedded sample set)")
	f.String("chat-address", "127.0.0.1:10000", "address of the default TLS chat listener (when the config declares no listeners)")
	f.String("assets-address", "127.0.0.1:10001", "address of the default TLS asset listener (when the config declares no listeners)")
	f.String("plain-address", "", "also run a plain-TCP chat listener here, for legacy clients (off by default)")
	f.String("echo-address", "", "also run the echo diagnostic service here, over TLS (off by default)")
	f.String("policy-address", "", "also run a master Flash policy listener here, usually :843")
	mustBind(a.v, "serve.assets", f.Lookup("assets"))
	mustBind(a.v, "serve.chat_address", f.Lookup("chat-address"))
	mustBind(a.v, "serve.assets_address", f.Lookup("assets-address"))
	mustBind(a.v, "serve.plain_address", f.Lookup("plain-address"))
	mustBind(a.v, "serve.echo_address", f.Lookup("echo-address"))
	mustBind(a.v, "policy.listen", f.Lookup("policy-address"))
	return cmd
}

// serveConfig decodes and validates the configuration of serve.
func (a *app) serveConfig(cmd *cobra.Command) (*serveConfig, error) {
	setServeDefaults(a.v)
	var cfg serveConfig
	if err := a.v.Unmarshal(&cfg); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if !a.v.IsSet("listeners") {
		cfg.Listeners = defaultListeners(a.v.GetString("serve.chat_address"), a.v.GetString("serve.assets_address"),
			a.v.GetString("serve.plain_address"), a.v.GetString("serve.echo_address"))
	}
	if assets := a.v.GetString("serve.assets"); assets != "" {
		for i := range cfg.Listeners {
			if cfg.Listeners[i].Service == serviceEnvoie && cfg.Listeners[i].Root == "" {
				cfg.Listeners[i].Root = assets
			}
		}
	}
	cfg.normalize()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	return &cfg, nil
}

// runServe starts every listener and blocks until ctx is cancelled, then
// shuts down, waiting for the handlers.
func runServe(ctx context.Context, cfg *serveConfig, a *app) error {
	log := a.log
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	setGCPercent(cfg.Runtime.GCPercent, log)

	mgr, err := certs.NewManager(ctx, certs.ManagerConfig{
		DataDir: cfg.DataDir,
		Logger:  log,
		ACME: certs.ACMEConfig{CA: cfg.ACME.CA, Email: cfg.ACME.Email, Agree: cfg.ACME.Agree, CARoot: cfg.ACME.CARoot,
			TLSALPNPort: cfg.ACME.TLSALPNPort, HTTPPort: cfg.ACME.HTTPPort, ListenHost: cfg.ACME.ListenHost, Profile: cfg.ACME.Profile},
	})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	defer mgr.Close()
	if err := announceLocalCA(a.out, cfg, mgr); err != nil {
		return err
	}

	// Certificates come before the addresses are bound. The first ACME
	// obtain answers TLS-ALPN-01 (RFC 8737) through certmagic's own
	// challenge server, which binds acme.tls_alpn_port while the challenge
	// lasts; were a listener already bound to that port (and not yet
	// serving), the CA would connect to it and never get an answer, so a
	// listener on :443 could never get its first certificate. Once serving,
	// a listener answers its renewals' challenges itself
	// (Source.GetCertificate).
	configs := make([]secure.ServerConfig, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		if configs[i], err = serverConfig(ctx, mgr, l, cfg.Limits, log); err != nil {
			return fmt.Errorf("listener %s: %w", l.Address, err)
		}
	}

	// Bind every address before serving any: a port taken fails the start
	// before any client is served, and the policy can name the ports
	// really bound. Serve closes its listener; closing again is harmless.
	lns, err := listenAll(cfg)
	if err != nil {
		return err
	}
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	policyXML, err := loadPolicy(cfg, lns)
	if err != nil {
		return err
	}
	relay := hub.New(hub.Config{
		MaxMessage:   cfg.Chat.MaxMessage,
		QueueBytes:   cfg.Chat.QueueBytes,
		FloodRate:    floodRate(cfg.Chat.FloodRate),
		FloodBurst:   cfg.Chat.FloodBurst,
		WriteTimeout: cfg.Chat.WriteTimeout,
		PolicyWait:   cfg.Chat.PolicyWait,
		Policy:       policyXML,
		Logger:       log,
	})
	defer relay.Close()

	// Asset folders stay open (os.Root) while their listener serves; they
	// close when serve returns, whether it started or failed half-way.
	var folders []io.Closer
	defer func() {
		for _, f := range folders {
			f.Close()
		}
	}()
	keep := func(c io.Closer) { folders = append(folders, c) }
	servers := make([]*secure.Server, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		handler, err := serviceHandler(l, relay, policyXML, log, keep)
		if err != nil {
			return err
		}
		sc := configs[i]
		if !sc.Plain {
			// Flash asks for the socket policy in plain text on the very
			// port a SecureSocket will then use for TLS, so a TLS listener
			// answers that request (and nothing else) before any handshake.
			ps := &policy.Server{Policy: policyXML, Logger: sc.Logger}
			sc.PlainFallback = ps.ServeConn
		}
		servers[i] = &secure.Server{Config: sc, Handler: handler}
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(lns))
	for i, srv := range servers {
		ln := lns[i]
		fmt.Fprintf(a.out, "passerelle: %s on %s (tls %s)\n", cfg.Listeners[i].Service, ln.Addr(), cfg.Listeners[i].TLS.Mode)
		wg.Go(func() {
			if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, net.ErrClosed) {
				errc <- fmt.Errorf("listener %s: %w", ln.Addr(), err)
			}
		})
	}
	if cfg.Policy.Listen != "" {
		ln := lns[len(lns)-1] // listenAll binds the policy listener last
		fmt.Fprintf(a.out, "passerelle: policy on %s\n", ln.Addr())
		ps := &policy.Server{Policy: policyXML, Logger: log}
		wg.Go(func() {
			if err := ps.Serve(ctx, ln); err != nil && !errors.Is(err, net.ErrClosed) {
				errc <- fmt.Errorf("policy listener: %w", err)
			}
		})
	}

	runErr := awaitShutdown(ctx, errc, mgr, log)
	log.Info("shutting down")
	cancel()
	relay.Close()
	wg.Wait()
	return runErr
}

// setGCPercent applies runtime.gc_percent, unless the operator set Go's own
// GOGC in the environment, which then wins as Go users expect.
func setGCPercent(percent int, log *slog.Logger) {
	if env := os.Getenv("GOGC"); env != "" {
		log.Debug("GOGC is set: runtime.gc_percent ignored", "gogc", env)
		return
	}
	debug.SetGCPercent(percent)
}

// announceLocalCA tells the operator where the local CA is and how clients
// come to trust it, when a listener uses it.
func announceLocalCA(out io.Writer, cfg *serveConfig, mgr *certs.Manager) error {
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
	fmt.Fprintf(out, "passerelle: clients on this machine trust it with `passerelle ca install`, or give them that file (openssl s_client -CAfile %s)\n", ca.CertFile())
	return nil
}

// awaitShutdown blocks until ctx ends or a listener fails, reloading
// certificate files on SIGHUP meanwhile (open connections stay up).
func awaitShutdown(ctx context.Context, errc <-chan error, mgr *certs.Manager, log *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
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

func usesLocalCA(cfg *serveConfig) bool {
	for _, l := range cfg.Listeners {
		if l.TLS.Mode == "local" {
			return true
		}
	}
	return false
}

// serviceHandler returns the connection handler of a listener's service.
// keep receives what must be closed at shutdown.
func serviceHandler(l listenerConfig, relay *hub.Hub, policyXML []byte, log *slog.Logger, keep func(io.Closer)) (func(context.Context, *secure.Conn), error) {
	switch l.Service {
	case serviceChat:
		// The services get the *tls.Conn itself (c.Conn), not the wrapper:
		// after a cut write they close the socket under TLS rather than
		// send a close alert in the middle of a record.
		return func(ctx context.Context, c *secure.Conn) { relay.ServeConn(ctx, c.Conn) }, nil
	case serviceEcho:
		e := &echo.Server{Policy: policyXML, Logger: log}
		return func(ctx context.Context, c *secure.Conn) { e.ServeConn(ctx, c.Conn) }, nil
	case serviceEnvoie:
		files := envoie.Samples()
		if l.Root != "" {
			dir, err := envoie.OpenDir(l.Root)
			if err != nil {
				return nil, fmt.Errorf("listener %s: assets: %w", l.Address, err)
			}
			keep(dir)
			files = dir
		}
		s := &envoie.Server{Files: files, Policy: policyXML, Logger: log}
		return func(ctx context.Context, c *secure.Conn) { s.ServeConn(ctx, c.Conn) }, nil
	}
	return nil, fmt.Errorf("listener %s: unknown service %q", l.Address, l.Service)
}

// serverConfig builds the secure server configuration of one listener, its
// certificates ready; runServe adds the policy answer once the ports are
// bound.
func serverConfig(ctx context.Context, mgr *certs.Manager, l listenerConfig, lim limitsConfig, log *slog.Logger) (secure.ServerConfig, error) {
	log = log.With("listener", l.Address, "service", l.Service)
	sc := secure.ServerConfig{
		HandshakeTimeout: lim.HandshakeTimeout,
		MaxConns:         lim.MaxConns,
		Logger:           log,
	}
	if l.TLS.Mode == "off" {
		sc.Plain = true
		return sc, nil
	}
	src, err := mgr.Source(ctx, certs.TLSSpec{Mode: certs.TLSMode(l.TLS.Mode), Names: l.TLS.Names, CertFile: l.TLS.CertFile, KeyFile: l.TLS.KeyFile})
	if err != nil {
		return sc, err
	}
	sc.GetCertificate = src.GetCertificate
	sc.NextProtos = src.NextProtos
	switch l.TLS.ClientAuth {
	case "request":
		sc.ClientAuth = secure.ClientAuthRequest
	case "require":
		sc.ClientAuth = secure.ClientAuthRequire
	}
	if l.TLS.ClientCAFile != "" {
		pem, err := os.ReadFile(l.TLS.ClientCAFile)
		if err != nil {
			return sc, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return sc, fmt.Errorf("tls.client_ca_file %s: no PEM certificate in the file", l.TLS.ClientCAFile)
		}
		sc.ClientCAs = pool
	}
	if list := l.TLS.Allow; !list.Empty() {
		if err := list.Validate(); err != nil {
			return sc, fmt.Errorf("tls.allow: %w", err)
		}
		sc.Authorize = allow.Authorize(list)
	}
	return sc, nil
}

// listenAll binds every listener's address, then the master policy
// listener's if one is configured (last).
func listenAll(cfg *serveConfig) ([]net.Listener, error) {
	addrs := make([]string, 0, len(cfg.Listeners)+1)
	for _, l := range cfg.Listeners {
		addrs = append(addrs, l.Address)
	}
	if cfg.Policy.Listen != "" {
		addrs = append(addrs, cfg.Policy.Listen)
	}
	var lns []net.Listener
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// loadPolicy returns the configured cross-domain policy, or one allowing every
// domain to the ports really bound by the listeners.
func loadPolicy(cfg *serveConfig, lns []net.Listener) ([]byte, error) {
	if cfg.Policy.File != "" {
		b, err := os.ReadFile(cfg.Policy.File)
		if err != nil {
			return nil, fmt.Errorf("policy.file: %w", err)
		}
		if err := policy.Validate(b); err != nil {
			return nil, fmt.Errorf("policy.file %s: %w", cfg.Policy.File, err)
		}
		return b, nil
	}
	var ports []int
	for _, ln := range lns[:len(cfg.Listeners)] {
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
			ports = append(ports, tcp.Port)
		}
	}
	return policy.Default(ports...), nil
}

// floodRate maps the configuration's "0 means no limit" to the hub's
// negative rate.
func floodRate(r float64) float64 {
	if r == 0 {
		return -1
	}
	return r
}
