package secure

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
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

// BenchmarkClassifyLongChain judges what a hostile client can send: the 809
// certificates of one Certificate message (see longChain), refused by their
// number, and the most the bounds let through: 64 ECDSA P-256 certificates
// none of which verifies another (longChain) or each of which verifies half
// of the others (worstChain), and as many certificates with RSA 8192 keys,
// the largest crypto/tls accepts from a peer, as fit in maxChainBytes. That
// is the work a handshake costs before anything about the client is
// trusted. units/op is the work charged to passerelle's own path search (a
// P-256 check is one unit, an RSA 8192 check 16); crypto/x509's search,
// which runs first when searchWork foresees it within the same budget, is
// not counted. Making the two RSA 8192 keys takes tens of seconds before the
// timing starts.
func BenchmarkClassifyLongChain(b *testing.B) {
	root := testpki.NewRoot(b, testpki.CAOptions{})
	long, _ := longChain(b, 809)
	worst, _ := worstChain(b, maxCertificates)
	var rsaKeys [2]*rsa.PrivateKey
	for i := range rsaKeys {
		k, err := rsa.GenerateKey(rand.Reader, 8192)
		if err != nil {
			b.Fatal(err)
		}
		rsaKeys[i] = k
	}
	heavy := loopChain(b, maxCertificates, rsaKeys[0], rsaKeys[1])
	for tooMuch(heavy) != "" {
		heavy = heavy[:len(heavy)-1]
	}
	opts := VerifyOptions{Roots: root.Pool(), Role: RoleClient, Revocation: RevocationOff, NoAIAFetch: true}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
	}{
		{"809 certificates", long},
		{"64 certificates", long[:maxCertificates]},
		{"64 certificates, all verifying", worst},
		{fmt.Sprintf("%d RSA 8192 certificates", len(heavy)), heavy},
	} {
		b.Run(tc.name, func(b *testing.B) {
			units := 0
			b.ReportAllocs()
			for b.Loop() {
				sigs := newSigBudget()
				if v := classify(ctx, tc.certs, opts, sigs); v.Status == StatusTrusted {
					b.Fatal("a loop of certificates judged trusted")
				}
				units += sigs.used
			}
			b.ReportMetric(float64(units)/float64(b.N), "units/op")
		})
	}
}
