package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/netaddr"
)

// Defaults of the Config fields that have one.
const (
	// DefaultName is Config.Name's default.
	DefaultName = "passerelle"
	// DefaultTTL is Config.TTL's default: a dead node's nicknames and
	// members are freed within it.
	DefaultTTL = 30 * time.Second
	// DefaultReconnectBuffer is Config.ReconnectBuffer's default, in bytes.
	DefaultReconnectBuffer = 8 << 20
	// DefaultPendingMsgs and DefaultPendingBytes are Config.PendingMsgs's
	// and Config.PendingBytes's defaults.
	DefaultPendingMsgs  = 65536
	DefaultPendingBytes = 64 << 20
)

// TLS names the PEM files of a TLS configuration.
type TLS struct {
	CAFile   string // the CA that signs the peers' certificates
	CertFile string // this node's certificate
	KeyFile  string // and its key
}

func (t TLS) set() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// Config configures a Node. Exactly one of Embedded and NATS is used.
type Config struct {
	// Embedded runs a NATS server in this process; the nodes' servers form
	// a cluster through Listen and Routes.
	Embedded bool
	// Listen is this node's route address (host:port), Embedded only.
	Listen string
	// Routes are the other nodes' route URLs (nats-route://host:port, or
	// host:port), Embedded only; at least one.
	Routes []string
	// Name is the cluster's name: the NATS cluster name (Embedded), and
	// part of every subject and of the bucket's name, so that several
	// deployments can share one NATS. Letters, digits, '-' and '_'.
	// Default DefaultName.
	Name string
	// NodeName is this node's name (the embedded NATS server's name, which
	// must be unique in the cluster and stable across restarts). Default:
	// the host name and Listen's port.
	NodeName string
	// DataDir is where the embedded NATS server keeps its state (a "nats"
	// folder is made in it). Embedded only; required.
	DataDir string
	// NATS are the URLs of an existing NATS system (nats://host:4222,
	// tls://...), when not Embedded.
	NATS []string
	// Creds is a NATS credentials file (external NATS).
	Creds string
	// TLS: for Embedded, the routes' certificates (required when a route
	// or Listen leaves the machine): each side of a route shows a
	// certificate signed by TLS.CAFile with both the serverAuth and the
	// clientAuth usages and a name among Routes' and Listen's hosts and
	// NodeName. For NATS, the client's CA and certificate.
	TLS TLS
	// SecretFile is the cluster secret, from which every node derives the
	// route user and password (Embedded only). Made on first start when
	// missing (crypto/rand, mode 0600), to be copied to the other nodes.
	// Default: SecretFileName in DataDir, unless TLS is set (the routes
	// then authenticate by certificate alone).
	SecretFile string
	// TTL: a dead node's nicknames and members are freed within it.
	// Default DefaultTTL; at least 1s.
	TTL time.Duration
	// ReconnectBuffer bounds the bytes kept for the other nodes while the
	// connection to NATS is down; what does not fit is dropped and counted.
	// A pack is taken while the buffer holds less than this, so the buffer
	// may go past it by one pack (at most 32 KiB).
	// Default DefaultReconnectBuffer.
	ReconnectBuffer int
	// PendingMsgs and PendingBytes bound what a room's subscription may
	// hold before this node delivers it; past them NATS messages are
	// dropped and counted. Defaults DefaultPendingMsgs, DefaultPendingBytes.
	PendingMsgs  int
	PendingBytes int
	// MaxMessage is this node's chat.max_message (hub.Config.MaxMessage):
	// a message from another node over it is dropped on arrival. Default
	// hub.DefaultMaxMessage.
	MaxMessage int
	// Logger receives the link's state changes; nil means none.
	Logger *slog.Logger
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// withDefaults fills the zero fields.
func (cfg Config) withDefaults() Config {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ReconnectBuffer <= 0 {
		cfg.ReconnectBuffer = DefaultReconnectBuffer
	}
	if cfg.PendingMsgs <= 0 {
		cfg.PendingMsgs = DefaultPendingMsgs
	}
	if cfg.PendingBytes <= 0 {
		cfg.PendingBytes = DefaultPendingBytes
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = hub.DefaultMaxMessage
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Validate checks cfg without touching the network or the disk, and
// returns every problem at once, each naming its configuration key
// (cluster.routes[1], ...).
func (cfg Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if cfg.Name != "" && !namePattern.MatchString(cfg.Name) {
		add("cluster.name: %q may hold only letters, digits, '-' and '_' (at most 64)", cfg.Name)
	}
	if cfg.TTL != 0 && cfg.TTL < time.Second {
		add("cluster ttl: %v is under the minimum of 1s", cfg.TTL)
	}
	if cfg.TLS.set() && (cfg.TLS.CertFile == "") != (cfg.TLS.KeyFile == "") {
		add("cluster.tls: cert_file and key_file go together")
	}
	switch {
	case cfg.Embedded && len(cfg.NATS) > 0:
		add("cluster: embedded is true and cluster.nats is set: choose one, an embedded NATS cluster (embedded, listen, routes) or an existing NATS system (nats)")
	case cfg.Embedded:
		errs = append(errs, cfg.validateEmbedded()...)
	case len(cfg.NATS) > 0:
		if cfg.SecretFile != "" {
			add("cluster.secret_file: is for an embedded NATS cluster (embedded: true); an existing NATS system takes cluster.creds")
		}
		if cfg.Listen != "" || len(cfg.Routes) > 0 {
			add("cluster: listen and routes are for an embedded NATS cluster (embedded: true), not with cluster.nats")
		}
		for i, u := range cfg.NATS {
			if _, err := parseURL(u, "nats"); err != nil {
				add("cluster.nats[%d]: %v", i, err)
			}
		}
	default:
		add("cluster: set embedded: true (with listen and routes) to run NATS in each node, or nats: [URLs] to use an existing NATS system")
	}
	return errors.Join(errs...)
}

func (cfg Config) validateEmbedded() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if cfg.Creds != "" {
		add("cluster.creds: is for an existing NATS system (cluster.nats), not an embedded one")
	}
	if cfg.TLS.set() && (cfg.TLS.CertFile == "" || cfg.TLS.CAFile == "") {
		add("cluster.tls: an embedded cluster's routes need cert_file, key_file and ca_file together")
	}
	if cfg.DataDir == "" {
		add("cluster: an embedded NATS server needs data_dir")
	}
	routeTLS := cfg.TLS.CertFile != "" && cfg.TLS.CAFile != ""
	lhost, lport, err := net.SplitHostPort(cfg.Listen)
	if err != nil || cfg.Listen == "" {
		add("cluster.listen: %q is not host:port (this node's route address, for example 0.0.0.0:6222)", cfg.Listen)
		lport = ""
	} else if p, err := strconv.Atoi(lport); err != nil || p <= 0 || p > 65535 {
		add("cluster.listen: port %q is not a number from 1 to 65535", lport)
	} else if !netaddr.IsLoopback(lhost) && !routeTLS {
		// The route credential would cross the network in clear, and
		// so would every room.
		add("cluster.listen: %s takes routes from other machines and routes are not encrypted: set cluster.tls.cert_file, cluster.tls.key_file and cluster.tls.ca_file, or listen on loopback (127.0.0.1:%s)", cfg.Listen, lport)
	}
	if len(cfg.Routes) == 0 {
		add("cluster.routes: an embedded cluster needs the other nodes' route URLs (for example [nats-route://node2:6222, nats-route://node3:6222])")
	}
	for i, r := range cfg.Routes {
		u, err := parseURL(r, "nats-route")
		if err != nil {
			add("cluster.routes[%d]: %v", i, err)
			continue
		}
		host := u.Hostname()
		if lport != "" && u.Port() == lport && (host == lhost || (netaddr.IsLoopback(host) && (netaddr.IsLoopback(lhost) || isUnspecified(lhost)))) {
			add("cluster.routes[%d]: %s is this node's own cluster.listen address; list the other nodes only", i, r)
			continue
		}
		if !netaddr.IsLoopback(host) && !routeTLS {
			add("cluster.routes[%d]: %s leaves this machine and routes are not encrypted: set cluster.tls.cert_file, cluster.tls.key_file and cluster.tls.ca_file (every node's certificate signed by that CA), or keep every route on loopback", i, r)
		}
	}
	return errs
}

// secretFile is the cluster secret's path: SecretFile, or the data
// folder's when the routes do not authenticate by certificate; "" for
// certificates alone.
func (cfg Config) secretFile() string {
	switch {
	case cfg.SecretFile != "":
		return cfg.SecretFile
	case cfg.TLS.CertFile != "":
		return ""
	case cfg.DataDir == "":
		return ""
	}
	return filepath.Join(cfg.DataDir, SecretFileName)
}

// routeNames are the names a route certificate may carry: the hosts of
// the configured routes and of Listen, and the node's name.
func (cfg Config) routeNames() []string {
	var names []string
	for _, r := range cfg.Routes {
		if u, err := parseURL(r, "nats-route"); err == nil {
			names = append(names, u.Hostname())
		}
	}
	if h, _, err := net.SplitHostPort(cfg.Listen); err == nil && !isUnspecified(h) {
		names = append(names, h)
	}
	if cfg.NodeName != "" {
		names = append(names, cfg.NodeName)
	}
	return names
}

// parseURL reads a URL or a bare host:port (given scheme then).
func parseURL(s, scheme string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = scheme + "://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("%q needs a host and a port", s)
	}
	return u, nil
}

func isUnspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
