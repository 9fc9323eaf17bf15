package certs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// ManagerConfig configures a Manager. Only DataDir is required.
type ManagerConfig struct {
	// DataDir is the data folder: the local CA lives in DataDir/ca, certmagic
	// storage (managed certificates, ACME accounts, locks) in
	// DataDir/certmagic.
	DataDir string
	// Logger receives the manager's and certmagic's logs. Default: discard.
	Logger *slog.Logger
	// ACME configures the ACME CA used by listeners in ModeACME.
	ACME ACMEConfig
	// LocalLifetime is the lifetime of managed certificates from the local
	// CA. Default DefaultManagedLocalLifetime (30 days).
	LocalLifetime time.Duration
	// RenewCheckInterval is how often certificates are checked for renewal.
	// Default certmagic's, 10 minutes.
	RenewCheckInterval time.Duration
	// RenewalWindowRatio is the part of a certificate's lifetime, at its
	// end, in which it is renewed. Default certmagic's, 1/3.
	RenewalWindowRatio float64
	// FileDebounce is how long a files-mode source waits after a change on
	// disk before reloading, so a certificate and key written one after the
	// other load together. Default 100ms.
	FileDebounce time.Duration
	// Storage holds managed certificates, ACME accounts and locks instead
	// of DataDir/certmagic: a storage shared by several nodes (package
	// cluster's, on NATS) lets one node obtain a certificate that every
	// node serves. Default nil: the folder.
	Storage certmagic.Storage
}

// Manager hands out certificate sources for listeners. It owns one certmagic
// cache and storage shared by local and ACME certificates (so one renewal
// loop maintains both) and the file watchers of files-mode listeners. Make
// one per process with NewManager and Close it on shutdown.
type Manager struct {
	cfg     ManagerConfig
	log     *slog.Logger
	zap     *zap.Logger
	storage certmagic.Storage
	cache   *certmagic.Cache

	// ctx lives until Close; background work (file watchers) stops with it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu serialises Source, Reload and Close.
	mu        sync.Mutex
	closed    bool
	ca        *CA
	caCreated bool
	files     []*fileSource

	// cfgMu guards the certmagic configs and the name index, read by
	// certmagic's maintenance goroutine through configForCert.
	cfgMu    sync.RWMutex
	localCfg *certmagic.Config
	acme     *acmeState
	byName   map[string]*certmagic.Config

	acmeCount acmeCounters // see ACMEStats

	// readyLogged is the serial last logged as "certificate ready" per
	// name: listeners sharing names share the certificate, and say so
	// once.
	readyMu     sync.Mutex
	readyLogged map[string]string
}

// NewManager prepares the data folder and starts the certmagic cache and
// its maintenance goroutine. Nothing is issued until Source is called. ctx
// only bounds the preparation; Close stops the manager.
func NewManager(ctx context.Context, cfg ManagerConfig) (*Manager, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, errors.New("certificate manager: no data folder configured (data_dir)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LocalLifetime == 0 {
		cfg.LocalLifetime = DefaultManagedLocalLifetime
	}
	if cfg.LocalLifetime < 0 || cfg.LocalLifetime > MaxLeafLifetime {
		return nil, fmt.Errorf("certificate manager: local certificate lifetime %s out of range (0 to 825 days)", cfg.LocalLifetime)
	}
	if cfg.RenewalWindowRatio < 0 || cfg.RenewalWindowRatio >= 1 {
		return nil, fmt.Errorf("certificate manager: renewal window ratio %g out of range (0 to 1)", cfg.RenewalWindowRatio)
	}
	if cfg.FileDebounce <= 0 {
		cfg.FileDebounce = 100 * time.Millisecond
	}
	if err := validateACMEConfig(cfg.ACME); err != nil {
		return nil, err
	}
	storage := cfg.Storage
	if storage == nil {
		storeDir := filepath.Join(cfg.DataDir, "certmagic")
		if err := os.MkdirAll(storeDir, 0o700); err != nil {
			return nil, fmt.Errorf("certificate manager: %w", err)
		}
		storage = &certmagic.FileStorage{Path: storeDir}
	}
	m := &Manager{
		cfg:     cfg,
		log:     cfg.Logger,
		zap:     newZapLogger(cfg.Logger),
		storage: storage,
		byName:  make(map[string]*certmagic.Config),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   m.configForCert,
		RenewCheckInterval: cfg.RenewCheckInterval,
		Logger:             m.zap,
	})
	return m, nil
}

// configForCert tells certmagic's maintenance which config (hence which
// issuer) renews a cached certificate: the one of the listener that asked
// for its names.
func (m *Manager) configForCert(c certmagic.Certificate) (*certmagic.Config, error) {
	m.cfgMu.RLock()
	defer m.cfgMu.RUnlock()
	for _, n := range c.Names {
		if cfg, ok := m.byName[n]; ok {
			return cfg, nil
		}
	}
	if m.localCfg != nil {
		return m.localCfg, nil
	}
	if m.acme != nil {
		return m.acme.cfg, nil
	}
	return nil, fmt.Errorf("no configuration manages %v", c.Names)
}

// newCertmagicConfig is the common part of the local and ACME configs.
func (m *Manager) newCertmagicConfig(onEvent func(context.Context, string, map[string]any) error) *certmagic.Config {
	return certmagic.New(m.cache, certmagic.Config{
		Storage:            m.storage,
		Logger:             m.zap,
		RenewalWindowRatio: m.cfg.RenewalWindowRatio,
		KeySource:          certmagic.StandardKeyGenerator{KeyType: certmagic.P256},
		OnEvent:            onEvent,
	})
}

// LocalCA loads the local CA from DataDir/ca, creating it the first time.
// created reports whether this Manager made it (on this call or during an
// earlier Source) rather than finding it on disk, so the caller can tell the
// operator how to trust the new CA.
func (m *Manager) LocalCA() (ca *CA, created bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.localCA()
}

func (m *Manager) localCA() (*CA, bool, error) {
	if m.ca != nil {
		return m.ca, m.caCreated, nil
	}
	ca, created, err := LoadOrCreateCA(CADir(m.cfg.DataDir))
	if err != nil {
		return nil, false, err
	}
	m.ca, m.caCreated = ca, created
	if created {
		m.log.Info("created local CA", "ca_file", ca.CertFile())
	}
	return ca, created, nil
}

// Reload re-reads the certificate and key files of every files-mode source
// (what SIGHUP does). A source whose new files are bad keeps serving its
// previous certificate; the errors of all sources are joined.
func (m *Manager) Reload() error {
	m.mu.Lock()
	files := append([]*fileSource(nil), m.files...)
	m.mu.Unlock()
	var errs []error
	for _, fs := range files {
		if err := fs.reload("reload"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops renewals and file watching. Certificates already handed out
// stay usable by open connections; new handshakes still get the last
// certificate. Close is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	m.cache.Stop()
	return nil
}
