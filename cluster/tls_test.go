package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

var loopbackIP = []net.IP{net.IPv4(127, 0, 0, 1)}

// TestRouteCertificates forms a cluster whose routes authenticate by
// certificate alone (no secret): each node's certificate carries both
// usages and a name of the configured routes. Then servers with other
// certificates of the same CA try to route in, as a stock nats-server
// would: none gets a route, each refusal counted, one log line for all.
func TestRouteCertificates(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, testpki.CAOptions{})
	caFile := root.WriteCert(t, dir, "ca.pem")
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	leaf := root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}, IPs: loopbackIP, ExtKeyUsage: both})
	certFile, keyFile := leaf.WriteFiles(t, dir, "node")
	logger, logs := testutil.Logger(t, slog.LevelInfo)
	nodes := startCluster(t, 2, func(i int, cfg *Config) {
		cfg.TLS = TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}
		cfg.SecretFile = ""
		if i == 0 {
			cfg.Logger = logger
		}
	})
	a, b := nodes[0].connect(), nodes[1].connect()
	waitInterest(t, servers(nodes), nodes[0].node.subject(hub.DefaultRoom), 2)
	a.send("over tls")
	b.expect("over tls")
	routes := nodes[0].node.srv.NumRoutes()
	if routes == 0 {
		t.Fatal("no route")
	}

	stranger := testpki.NewRoot(t, testpki.CAOptions{})
	rogues := []struct {
		name string
		leaf *testpki.Leaf
	}{
		{"server certificate of the cluster's CA", root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}, IPs: loopbackIP})},
		{"chat user's client certificate of the cluster's CA", root.Leaf(t, testpki.LeafOptions{CommonName: "alice", Emails: []string{"alice@example.org"}, Client: true})},
		{"both usages, another name", root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"rogue.example"}, ExtKeyUsage: both})},
		{"both usages, another CA", stranger.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}, IPs: loopbackIP, ExtKeyUsage: both})},
	}
	for _, r := range rogues {
		t.Run(r.name, func(t *testing.T) {
			before := nodes[0].node.Stats().RoutesRefused
			cert := tls.Certificate{Certificate: [][]byte{r.leaf.Cert.Raw}, PrivateKey: r.leaf.Key}
			rogue := startRogue(t, nodes[0].node.cfg.Listen, &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true})
			testutil.Eventually(t, "rogue route refused", waitTimeout, func() bool { return nodes[0].node.Stats().RoutesRefused > before })
			if got := nodes[0].node.srv.NumRoutes(); got != routes || rogue.NumRoutes() != 0 {
				t.Fatalf("routes with a rogue: %d (was %d), rogue has %d", got, routes, rogue.NumRoutes())
			}
		})
	}
	// Four rogues, each retrying: one line (the next ones are held back
	// for ratelog's interval and counted).
	if n := strings.Count(logs.String(), `msg="cluster route refused: a server without this cluster's credential or route certificate tried to join"`); n != 1 {
		t.Fatalf("%d route refused lines, want 1:\n%s", n, logs)
	}
	a.send("still here")
	b.expect("still here")
}

// startRogue runs a stock nats-server that routes at route with the
// cluster's default name and the given route TLS (nil: plain), as someone
// who reached the route port would.
func startRogue(t *testing.T, route string, tc *tls.Config) *server.Server {
	t.Helper()
	u, err := url.Parse("nats-route://" + route)
	if err != nil {
		t.Fatal(err)
	}
	opts := &server.Options{
		ServerName: "rogue", Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		Cluster: server.ClusterOpts{Name: DefaultName, Host: "127.0.0.1", Port: server.RANDOM_PORT, TLSConfig: tc, TLSTimeout: 2},
		Routes:  []*url.URL{u},
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("rogue not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestOwnCertificateNotRoute: a node whose own certificate lacks the
// clientAuth usage (a plain server certificate of the same CA) stops at
// start, naming the file, instead of failing every route later.
func TestOwnCertificateNotRoute(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, testpki.CAOptions{})
	caFile := root.WriteCert(t, dir, "ca.pem")
	leaf := root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}, IPs: loopbackIP})
	certFile, keyFile := leaf.WriteFiles(t, dir, "node")
	_, err := routeTLS(TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, []string{"localhost"})
	if err == nil || !strings.Contains(err.Error(), "cluster.tls.cert_file: "+certFile+" is not a route certificate") {
		t.Fatalf("routeTLS with a server certificate: %v, want it refused as no route certificate", err)
	}
}
