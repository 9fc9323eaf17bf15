package serve

import (
	"log/slog"

	"github.com/caddyserver/certmagic"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/cluster"
	"github.com/passerelle/passerelle/hub"
)

// clusterConfig is the cluster section: chat rooms across several nodes
// over NATS (docs/cluster.md). Absent, passerelle is one node and starts
// no NATS.
type clusterConfig struct {
	Embedded bool             `mapstructure:"embedded"`
	Listen   string           `mapstructure:"listen"`
	Routes   []string         `mapstructure:"routes"`
	Name     string           `mapstructure:"name"`
	NodeName string           `mapstructure:"node_name"`
	NATS     []string         `mapstructure:"nats"`
	Creds    string           `mapstructure:"creds"`
	TLS      clusterTLSConfig `mapstructure:"tls"`
	// SecretFile is the route secret (embedded); default
	// DATA_DIR/cluster.secret unless tls is set, made on first start.
	SecretFile string `mapstructure:"secret_file"`
}

type clusterTLSConfig struct {
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// enabled reports whether the section asks for a cluster at all.
func (c clusterConfig) enabled() bool {
	return c.Embedded || c.Listen != "" || len(c.Routes) > 0 || c.Name != "" || c.NodeName != "" ||
		len(c.NATS) > 0 || c.Creds != "" || c.TLS != (clusterTLSConfig{}) || c.SecretFile != ""
}

// config is the section as the cluster package takes it; maxMessage is
// chat.max_message, which messages from other nodes are held to as well.
func (c clusterConfig) config(dataDir string, maxMessage int, log *slog.Logger) cluster.Config {
	return cluster.Config{
		Embedded:   c.Embedded,
		Listen:     c.Listen,
		Routes:     c.Routes,
		Name:       c.Name,
		NodeName:   c.NodeName,
		DataDir:    dataDir,
		NATS:       c.NATS,
		Creds:      c.Creds,
		TLS:        cluster.TLS{CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile},
		SecretFile: c.SecretFile,
		MaxMessage: maxMessage,
		Logger:     log,
	}
}

// validate checks the section, when there is one.
func (c clusterConfig) validate(dataDir string) error {
	if !c.enabled() {
		return nil
	}
	return c.config(dataDir, 0, nil).Validate()
}

// clusterLink is the running cluster link, or nothing for a single node.
type clusterLink struct{ node *cluster.Node }

// startClusterLink starts the cluster link the configuration asks for:
// none without a cluster section.
func startClusterLink(cfg *Config, log *slog.Logger) (*clusterLink, error) {
	if !cfg.Cluster.enabled() {
		return &clusterLink{}, nil
	}
	// The package's errors already begin with "cluster".
	n, err := cluster.Start(cfg.Cluster.config(cfg.DataDir, cfg.Chat.MaxMessage, log))
	if err != nil {
		return nil, err
	}
	return &clusterLink{node: n}, nil
}

// link is what the hub takes: nil (not a nil *cluster.Node) for a single
// node.
func (l *clusterLink) link() hub.Link {
	if l == nil || l.node == nil {
		return nil
	}
	return l.node
}

// certStorage is where certmagic keeps certificates: on NATS when a
// cluster node has an ACME listener, so that one node orders and every node
// serves; otherwise nil, the data folder. (Local-mode certificates stay in
// the data folder: each node has its own local CA, and a node must not wait
// for the cluster to serve them.)
func (l *clusterLink) certStorage(cfg *Config) certmagic.Storage {
	if l == nil || l.node == nil {
		return nil
	}
	for _, ls := range cfg.Listeners {
		if ls.TLS.Mode == certs.ModeACME {
			return l.node.CertStorage()
		}
	}
	return nil
}

// close leaves the cluster, after the hub has closed.
func (l *clusterLink) close() {
	if l != nil && l.node != nil {
		l.node.Close()
	}
}
