package certs

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"

	"github.com/passerelle/passerelle/internal/testpki"
)

// go test -run '^$' -bench . -benchmem ./certs

func BenchmarkIssue(b *testing.B) {
	ca := newTestCA(b)
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519, KeyRSA2048} {
		b.Run(string(kt), func(b *testing.B) {
			for b.Loop() {
				if _, err := ca.Issue(IssueRequest{Names: []string{"localhost", "127.0.0.1"}, KeyType: kt}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Signing only: what the local certmagic issuer does for a CSR.
	b.Run("given-public-key", func(b *testing.B) {
		k, _ := GenerateKey(KeyECDSAP256)
		for b.Loop() {
			if _, err := ca.Issue(IssueRequest{Names: []string{"localhost"}, PublicKey: k.Public()}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCreateCA(b *testing.B) {
	for b.Loop() {
		if _, err := CreateCA(b.TempDir()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetCertificate is the per-handshake cost of picking the
// certificate, for each source.
func BenchmarkGetCertificate(b *testing.B) {
	client, server := net.Pipe()
	b.Cleanup(func() { client.Close(); server.Close() })
	hello := &tls.ClientHelloInfo{ServerName: "localhost", Conn: server}

	root := testpki.NewRoot(b, testpki.CAOptions{})
	leaf := root.Leaf(b, testpki.LeafOptions{})
	dir := b.TempDir()
	certFile, keyFile := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key")
	if err := WriteFileAtomic(certFile, leaf.ChainPEM(), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := WriteFileAtomic(keyFile, leaf.KeyPEM(b), 0o600); err != nil {
		b.Fatal(err)
	}
	m := newTestManager(b, ManagerConfig{DataDir: b.TempDir()})
	for _, spec := range []TLSSpec{
		{Mode: ModeLocal},
		{Mode: ModeFiles, CertFile: certFile, KeyFile: keyFile},
	} {
		src, err := m.Source(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(spec.Mode), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c, err := src.GetCertificate(hello); err != nil || c == nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandshakeLocal is a full TLS 1.3 handshake over loopback against
// a local-mode source, client verifying against the local CA.
func BenchmarkHandshakeLocal(b *testing.B) {
	m := newTestManager(b, ManagerConfig{DataDir: b.TempDir()})
	src, err := m.Source(context.Background(), TLSSpec{})
	if err != nil {
		b.Fatal(err)
	}
	ca, _, _ := m.LocalCA()
	addr := echoServer(b, src.GetCertificate, src.NextProtos)
	cfg := &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()}
	for b.Loop() {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
