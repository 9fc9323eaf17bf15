package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbedded runs this node's NATS server: a route port, JetStream for
// the bucket, and a client port on loopback that only this process can use
// (its token is random and never leaves the process). The node itself
// connects in process; the client port exists because nats-server starts
// its routes only once a client listener is up (DontListen never starts
// them).
func startEmbedded(cfg Config, token string) (*server.Server, error) {
	host, portStr, _ := net.SplitHostPort(cfg.Listen)
	port, _ := strconv.Atoi(portStr)
	name := cfg.NodeName
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			h = "node"
		}
		name = h + "-" + portStr
	}
	opts := &server.Options{
		ServerName:         name,
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		Authorization:      token,
		NoSigs:             true,
		JetStream:          true,
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  256 << 20,
		StoreDir:           filepath.Join(cfg.DataDir, "nats"),
		Cluster: server.ClusterOpts{
			Name:           cfg.Name,
			Host:           host,
			Port:           port,
			ConnectRetries: -1, // keep trying routes to nodes not up yet
		},
	}
	for i, r := range cfg.Routes {
		u, err := parseURL(r, "nats-route")
		if err != nil {
			return nil, fmt.Errorf("cluster.routes[%d]: %w", i, err)
		}
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", Host: u.Host})
	}
	if cfg.TLS.CertFile != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
			CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, CaFile: cfg.TLS.CAFile, Verify: true,
		})
		if err != nil {
			return nil, fmt.Errorf("cluster.tls: %w", err)
		}
		opts.Cluster.TLSConfig = tc
		opts.Cluster.TLSTimeout = 5
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded NATS server: %w", err)
	}
	s.SetLoggerV2(&natsLogger{log: cfg.Logger.With("nats_server", name)}, false, false, false)
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("cluster: embedded NATS server not ready after 10s (is cluster.listen %s free?)", cfg.Listen)
	}
	return s, nil
}

// natsLogger sends the embedded server's log to slog, a level down (its
// errors are mostly routes to nodes not up yet, which it retries; its
// warnings are routine). Its Fatalf only logs: nothing NATS does stops
// passerelle.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l *natsLogger) Warnf(format string, v ...any) { l.log.Warn("nats: " + fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l *natsLogger) Errorf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l *natsLogger) Debugf(format string, v ...any) {}
func (l *natsLogger) Tracef(format string, v ...any) {}
