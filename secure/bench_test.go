package secure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"testing"

	"github.com/passerelle/passerelle/internal/testpki"
)

// BenchmarkClassify judges a leaf + intermediate chain against a root,
// revocation off: the cost Classify adds to every handshake.
func BenchmarkClassify(b *testing.B) {
	root := testpki.NewRoot(b, testpki.CAOptions{})
	leaf := root.Intermediate(b, testpki.CAOptions{}).Leaf(b, testpki.LeafOptions{})
	chain := append([]*x509.Certificate{leaf.Cert}, leaf.Chain...)
	opts := VerifyOptions{Roots: root.Pool(), Name: "localhost", Revocation: RevocationOff}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v := Classify(ctx, chain, opts); v.Status != StatusTrusted {
			b.Fatal(v.Reason)
		}
	}
}

// BenchmarkHandshake is a full Dial (TCP connect, TLS 1.3 handshake with
// ECDSA P-256, Classify) to a Server on loopback, one greeting byte read.
func BenchmarkHandshake(b *testing.B) {
	benchHandshake(b, false)
}

// BenchmarkHandshakeMutual adds a client certificate judged by the server.
func BenchmarkHandshakeMutual(b *testing.B) {
	benchHandshake(b, true)
}

func benchHandshake(b *testing.B, mutual bool) {
	root := testpki.NewRoot(b, testpki.CAOptions{})
	inter := root.Intermediate(b, testpki.CAOptions{})
	scfg := ServerConfig{GetCertificate: staticCert(inter.Leaf(b, testpki.LeafOptions{}).TLS()), Revocation: RevocationOff}
	ccfg := ClientConfig{ServerName: "localhost", RootCAs: root.Pool(), Revocation: RevocationOff}
	if mutual {
		scfg.ClientAuth, scfg.ClientCAs = ClientAuthRequire, root.Pool()
		ccfg.Certificates = []tls.Certificate{inter.Leaf(b, testpki.LeafOptions{Client: true, Emails: []string{"a@example.org"}}).TLS()}
	}
	ts := startServer(b, scfg, func(_ context.Context, c *Conn) { c.Write([]byte{'!'}) })
	ctx := context.Background()
	buf := make([]byte, 1)
	b.ReportAllocs()
	for b.Loop() {
		c, err := Dial(ctx, ts.addr, ccfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkClassifyLongChain judges the 809 certificates a hostile client
// can send in one Certificate message (see longChain), and the 11 the limit
// lets through: the work a handshake costs before anything about the client
// is trusted. sigs/op is the number of signatures Classify itself checked
// (crypto/x509's own, bounded by it, are not counted).
func BenchmarkClassifyLongChain(b *testing.B) {
	root := testpki.NewRoot(b, testpki.CAOptions{})
	long, _ := longChain(b, 809)
	opts := VerifyOptions{Roots: root.Pool(), Role: RoleClient, Revocation: RevocationOff, NoAIAFetch: true}
	ctx := context.Background()
	for _, n := range []int{809, maxIntermediates + 1} {
		b.Run(fmt.Sprintf("%d certificates", n), func(b *testing.B) {
			checks := 0
			b.ReportAllocs()
			for b.Loop() {
				sigs := newSigBudget()
				if v := classify(ctx, long[:n], opts, sigs); v.Status == StatusTrusted {
					b.Fatal("a loop of certificates judged trusted")
				}
				checks += sigs.used
			}
			b.ReportMetric(float64(checks)/float64(b.N), "sigs/op")
		})
	}
}
