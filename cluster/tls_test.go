package cluster

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/testpki"
)

// TestRoutesOverTLS forms a cluster whose routes are TLS with server
// certificates from one CA (as passerelle cert issue makes them), and
// checks that a node whose certificate comes from another CA stays out.
func TestRoutesOverTLS(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, testpki.CAOptions{})
	caFile := root.WriteCert(t, dir, "ca.pem")
	leaf := root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	certFile, keyFile := leaf.WriteFiles(t, dir, "node")
	nodes := startCluster(t, 2, func(i int, cfg *Config) {
		cfg.TLS = TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}
	})
	a, b := nodes[0].connect(), nodes[1].connect()
	waitInterest(t, servers(nodes), nodes[0].node.subject(hub.DefaultRoom), 2)
	a.send("over tls")
	b.expect("over tls")
	routes := nodes[0].node.srv.NumRoutes()
	if routes == 0 {
		t.Fatal("no route")
	}

	// A node with a certificate from another CA is refused.
	stranger := testpki.NewRoot(t, testpki.CAOptions{})
	sdir := t.TempDir()
	sleaf := stranger.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	scert, skey := sleaf.WriteFiles(t, sdir, "node")
	port := freePorts(t, 1)[0]
	s, err := Start(Config{Embedded: true, Listen: "127.0.0.1:" + strconv.Itoa(port), NodeName: "stranger", DataDir: sdir,
		Routes: []string{nodes[0].node.cfg.Listen},
		TLS:    TLS{CAFile: stranger.WriteCert(t, sdir, "ca.pem"), CertFile: scert, KeyFile: skey}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.Sleep(time.Second)
	if got := nodes[0].node.srv.NumRoutes(); got != routes || s.srv.NumRoutes() != 0 {
		t.Fatalf("routes with a stranger: %d (was %d), stranger has %d", got, routes, s.srv.NumRoutes())
	}
}
