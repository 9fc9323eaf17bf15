package certs_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"

	"github.com/passerelle/passerelle/certs"
)

// A listener's certificates come from a Source: plug GetCertificate and
// NextProtos into the server's TLS settings (secure.ServerConfig has the
// same two fields) and the certificates renew or reload underneath it.
func ExampleManager_Source() {
	dataDir, _ := os.MkdirTemp("", "passerelle-example-")
	defer os.RemoveAll(dataDir)

	ctx := context.Background()
	mgr, err := certs.NewManager(ctx, certs.ManagerConfig{DataDir: dataDir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mgr.Close()

	// Local CA, names localhost, 127.0.0.1 and ::1 (the defaults).
	src, err := mgr.Source(ctx, certs.TLSSpec{Mode: certs.ModeLocal})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetCertificate: src.GetCertificate,
		NextProtos:     src.NextProtos,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()

	// A client trusting the local CA verifies the certificate.
	ca, _, _ := mgr.LocalCA()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	fmt.Println("trusted certificate for", leaf.DNSNames, "from", leaf.Issuer.Organization)
	// Output: trusted certificate for [localhost] from [passerelle local CA]
}

// Issue a client certificate from the local CA and save it.
func ExampleCA_Issue() {
	dir, _ := os.MkdirTemp("", "passerelle-example-")
	defer os.RemoveAll(dir)

	ca, _, err := certs.LoadOrCreateCA(certs.CADir(dir))
	if err != nil {
		fmt.Println(err)
		return
	}
	is, err := ca.Issue(certs.IssueRequest{Names: []string{"alice@example.test"}, CommonName: "alice", Client: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	key, _ := is.KeyPEM()
	if err := certs.WriteFileAtomic(dir+"/alice.crt", is.CertPEM(), 0o644); err != nil {
		fmt.Println(err)
	}
	if err := certs.WriteFileAtomic(dir+"/alice.key", key, 0o600); err != nil {
		fmt.Println(err)
	}
	fmt.Println(is.Cert.Subject.CommonName, is.Cert.EmailAddresses)
	// Output: alice [alice@example.test]
}
