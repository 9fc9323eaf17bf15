package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
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
		tc, err := routeTLS(cfg.TLS)
		if err != nil {
			return nil, err
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
func (l *natsLogger) Warnf(format string, v ...any) { l.log.Info("nats: " + fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any) {
	l.log.Warn("nats: " + fmt.Sprintf(format, v...))
}
func (l *natsLogger) Fatalf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l *natsLogger) Debugf(format string, v ...any) {}
func (l *natsLogger) Tracef(format string, v ...any) {}

// routeTLS is the routes' TLS: each node shows its certificate and checks
// the other's against the CA, both ways. A node's certificate is a server
// certificate (passerelle cert issue makes those), which Go would refuse
// as a client certificate for its missing clientAuth usage: the accepting
// side checks the chain itself, for any usage. So the CA must sign only
// the nodes' certificates: a cluster CA, or the local CA of one machine.
func routeTLS(t TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster.tls: %w", err)
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("cluster.tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster.tls.ca_file: %s holds no PEM certificate", t.CAFile)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, chains [][]*x509.Certificate) error {
			if len(chains) > 0 {
				return nil // verified by crypto/tls (the dialling side)
			}
			certs := make([]*x509.Certificate, 0, len(raw))
			for _, der := range raw {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return fmt.Errorf("cluster route: bad peer certificate: %w", err)
				}
				certs = append(certs, c)
			}
			if len(certs) == 0 {
				return errors.New("cluster route: the peer sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			if err != nil {
				return fmt.Errorf("cluster route: peer certificate not signed by cluster.tls.ca_file: %w", err)
			}
			return nil
		},
	}, nil
}
