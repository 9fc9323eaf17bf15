package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/passerelle/passerelle/certs"
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
folder). Later starts reuse the same CA. Browsers use the same ports: open
https://localhost:10000/ for the chat page; OpenFL HTML5 and Ruffle clients
connect over WebSocket (wss://localhost:10000/); assets are also at
https://localhost:10001/NAME.

A configuration file (--config) can declare any set of listeners: chat, envoie,
echo or policy, each over TLS from the local CA, ACME or files, or in plain TCP
for legacy clients. A key the file does not know, a value of the wrong type or a
duration without its unit stops serve before anything starts, naming the key.

SIGHUP reloads certificate files (files mode) without dropping connections.`,
		Example: `  passerelle serve
  passerelle serve --assets ./public
  passerelle serve --chat-address 0.0.0.0:10000 --plain-address 127.0.0.1:9999
  passerelle serve --admin 127.0.0.1:10080
  passerelle --config configs/acme.yaml serve
  passerelle --config configs/cluster.yaml serve   # one node of three (docs/cluster.md)`,
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
	f.String("admin", "", "serve /metrics, /healthz, /readyz and /debug/pprof/ here, e.g. 127.0.0.1:10080 (off by default; see docs/operations.md)")
	mustBind(a.v, "serve.assets", f.Lookup("assets"))
	mustBind(a.v, "serve.chat_address", f.Lookup("chat-address"))
	mustBind(a.v, "serve.assets_address", f.Lookup("assets-address"))
	mustBind(a.v, "serve.plain_address", f.Lookup("plain-address"))
	mustBind(a.v, "serve.echo_address", f.Lookup("echo-address"))
	mustBind(a.v, "policy.listen", f.Lookup("policy-address"))
	mustBind(a.v, "admin.address", f.Lookup("admin"))
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
				cfg.Listeners[i].rootFrom = "--assets"
			}
		}
	}
	if cfg.Policy.Listen != "" {
		// The master policy listener is one more row of the table.
		cfg.Listeners = append(cfg.Listeners, listenerConfig{Address: cfg.Policy.Listen, Service: servicePolicy, TLS: tlsConfig{Mode: string(certs.ModeOff)}, addressFrom: "policy.listen"})
	}
	cfg.normalize()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	return &cfg, nil
}

// runServe is serve's steps, in order: read every file the configuration
// names (nothing created yet, every error at once), get the certificates,
// bind every address, start the services, and serve until ctx is
// cancelled; then shut down, waiting for the handlers.
func runServe(ctx context.Context, cfg *serveConfig, a *app) error {
	log := a.log
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// SIGHUP is caught from the start: once a listener is announced, an
	// operator (or a script reading the announcement) may send it at once,
	// and Go's default for an uncaught SIGHUP ends the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	lns, err := prepareListeners(cfg, log)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	defer lns.close()
	log.Info("connection limits", "max_conns", lns.limiter.MaxConns(), "max_conns_per_address", lns.limiter.MaxConnsPerAddress())
	setGCPercent(cfg.Runtime.GCPercent, log)

	cl, err := startClusterLink(cfg, log)
	if err != nil {
		return err
	}
	defer cl.close()
	mgr, err := certs.NewManager(ctx, certs.ManagerConfig{
		DataDir: cfg.DataDir,
		Storage: cl.certStorage(cfg),
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
	if err := lns.readLocalClientCAs(); err != nil {
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
	if err := lns.certificates(ctx, mgr); err != nil {
		return err
	}
	// Bind every address before serving any: a port taken fails the start
	// before any client is served, and the policy can name the ports
	// really bound.
	if err := lns.bind(); err != nil {
		return err
	}
	svc := newServices(cfg, lns.policyDoc(), log)
	svc.link = cl.link()
	defer svc.close()
	admin, err := startAdmin(ctx, cfg, a.out, log, lns, svc, mgr, cl)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := lns.startServices(svc); err != nil {
		return err
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(lns.all))
	for _, l := range lns.all {
		fmt.Fprintf(a.out, "passerelle: %s\n", l.describe())
		wg.Go(func() {
			if err := l.serve(ctx); err != nil {
				errc <- err
			}
		})
	}

	runErr := awaitShutdown(ctx, errc, hup, mgr, log)
	log.Info("shutting down")
	cancel()
	svc.close()
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
	fmt.Fprintf(out, "passerelle: clients on this machine trust it with `passerelle%s ca install`, or give them that file (openssl s_client -CAfile %s)\n", dataDirFlag(cfg.DataDir), ca.CertFile())
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

func usesLocalCA(cfg *serveConfig) bool {
	for _, l := range cfg.Listeners {
		if l.TLS.Mode == string(certs.ModeLocal) {
			return true
		}
	}
	return false
}
