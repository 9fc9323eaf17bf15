package cluster

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/passerelle/passerelle/certs"
)

// clientUser is the user of this node's own connection to its embedded
// server.
const clientUser = "passerelle"

// startEmbedded runs this node's NATS server: a route port that only the
// cluster's nodes get through (routes authenticate with the credential
// derived from the cluster secret, or with a route certificate, see
// routeTLS), JetStream for the buckets, and a client port on loopback that
// only this process can use: its one user has a random password that
// never leaves the process, and may use only passerelle's subjects and
// buckets (permissions). The node itself connects in process; the client
// port exists because nats-server starts its routes only once a client
// listener is up (DontListen never starts them).
func startEmbedded(cfg Config, clientPassword string, log *natsLogger) (*server.Server, error) {
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
	// The server keeps bcrypt hashes of the passwords, not the passwords
	// (as nats-server recommends): a memory dump of its options gives
	// nothing to log in with.
	clientHash, err := bcryptHash(clientPassword)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		Users: []*server.User{{
			Username:    clientUser,
			Password:    clientHash,
			Permissions: clientPermissions(cfg.Name),
		}},
		NoSigs:             true,
		JetStream:          true,
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  256 << 20,
		StoreDir:           filepath.Join(cfg.DataDir, "nats"),
		Cluster: server.ClusterOpts{
			Name:           cfg.Name,
			Host:           host,
			Port:           port,
			AuthTimeout:    2,
			ConnectRetries: -1,   // keep trying routes to nodes not up yet
			ConnectBackoff: true, // and less often the longer they are down
			// The client port is this process's own: tell no one.
			NoAdvertise: true,
		},
	}
	var cred routeCredential
	if path := cfg.secretFile(); path != "" {
		secret, err := loadOrCreateSecret(path)
		if err != nil {
			return nil, err
		}
		cred, err = deriveRouteCredential(secret, cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("cluster.secret_file: %w", err)
		}
		hash, err := bcryptHash(cred.password)
		if err != nil {
			return nil, err
		}
		opts.Cluster.Username, opts.Cluster.Password = cred.user, hash
	}
	for i, r := range cfg.Routes {
		u, err := parseURL(r, "nats-route")
		if err != nil {
			return nil, fmt.Errorf("cluster.routes[%d]: %w", i, err)
		}
		ru := &url.URL{Scheme: "nats-route", Host: u.Host}
		if cred.user != "" {
			ru.User = url.UserPassword(cred.user, cred.password)
		}
		opts.Routes = append(opts.Routes, ru)
		log.routes = append(log.routes, u.Host)
	}
	if cfg.TLS.CertFile != "" {
		tc, err := routeTLS(cfg.TLS, cfg.routeNames())
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
	log.server = name
	s.SetLoggerV2(log, false, false, false)
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("cluster: embedded NATS server not ready after 10s (is cluster.listen %s free?)", cfg.Listen)
	}
	return s, nil
}

// bcryptHash hashes at bcrypt's least cost: the passwords are 256 random
// bits, which no cost factor makes harder to guess, and each route and
// client connection pays the cost in the server's read loop.
func bcryptHash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return "", fmt.Errorf("cluster: hash a password: %w", err)
	}
	return string(h), nil
}

// randomPassword is the embedded client port's password: 256 bits from
// crypto/rand.
func randomPassword() string {
	return rand.Text() + rand.Text()
}

// clientPermissions are what passerelle's own connection may do: its room
// subjects, its three buckets (nicknames and members, certificates,
// certificate locks) through the key-value and JetStream API subjects of
// those buckets only, and replies to its own inboxes. An operator of an
// existing NATS gives the user of cluster.creds the same (docs/cluster.md).
func clientPermissions(cluster string) *server.Permissions {
	var pub []string
	pub = append(pub, "passerelle."+cluster+".>", "$JS.API.INFO")
	for _, b := range bucketNames(cluster) {
		stream := "KV_" + b
		pub = append(pub,
			"$KV."+b+".>",
			"$JS.API.STREAM.INFO."+stream,
			"$JS.API.STREAM.CREATE."+stream,
			"$JS.API.STREAM.UPDATE."+stream,
			"$JS.API.STREAM.MSG.GET."+stream,
			"$JS.API.DIRECT.GET."+stream+".>",
			"$JS.API.CONSUMER.CREATE."+stream+".>",
			"$JS.API.CONSUMER.CREATE."+stream,
			"$JS.API.CONSUMER.INFO."+stream+".>",
			"$JS.API.CONSUMER.DELETE."+stream+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+stream+".>",
			"$JS.FC."+stream+".>",
			"$JS.ACK."+stream+".>",
		)
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{"passerelle." + cluster + ".>", "_INBOX.>"}},
	}
}

// bucketNames are the key-value buckets of a cluster: nicknames and
// members, certificates, certificate locks.
func bucketNames(cluster string) []string {
	b := "passerelle_" + cluster
	return []string{b, b + "_certs", b + "_locks"}
}

// routeTLS is the routes' TLS: each node shows its certificate and checks
// the other's, both ways, with the same rule: signed by the CA, valid now,
// carrying both the serverAuth usage (it accepts routes) and the clientAuth
// usage (it opens them), and valid for one of names (the configured routes'
// and listen hosts, the node name). A chat user's client certificate from
// the same CA has no serverAuth usage and no node's name, and stays out.
// `passerelle cert issue --route` makes such certificates.
func routeTLS(t TLS, names []string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster.tls: %w", err)
	}
	pool, err := certs.AddCAFile(nil, "cluster.tls.ca_file", t.CAFile)
	if err != nil {
		return nil, err
	}
	// LoadX509KeyPair has parsed the leaf already. Its name is checked
	// by the other nodes, against their routes.
	if err := checkRouteCert(cert.Leaf, nil, pool, nil); err != nil {
		return nil, fmt.Errorf("cluster.tls.cert_file: %s is not a route certificate for this cluster: %w (make one with passerelle cert issue --route NAME)", t.CertFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientAuth:   tls.RequireAnyClientCert,
		// The check below is the whole verification, on both sides: the
		// dialling side's own (by server name, serverAuth only) is not
		// the cluster's rule. VerifyConnection also runs on resumption.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("cluster route: the peer sent no certificate")
			}
			return checkRouteCert(cs.PeerCertificates[0], cs.PeerCertificates[1:], pool, names)
		},
	}, nil
}

// checkRouteCert applies routeTLS's rule to one certificate; names nil
// skips the name.
func checkRouteCert(leaf *x509.Certificate, inter []*x509.Certificate, roots *x509.CertPool, names []string) error {
	ip := x509.NewCertPool()
	for _, c := range inter {
		ip.AddCert(c)
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: ip, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			return fmt.Errorf("cluster route: peer certificate %q refused: %w", leaf.Subject.CommonName, err)
		}
	}
	if names == nil {
		return nil
	}
	for _, n := range names {
		if leaf.VerifyHostname(n) == nil {
			return nil
		}
	}
	return fmt.Errorf("cluster route: peer certificate %q refused: valid for none of the cluster's names %v", leaf.Subject.CommonName, names)
}
