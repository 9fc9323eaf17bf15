package testbed

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// BenchmarkNew measures a start: binding every port and issuing every
// certificate (the root is loaded, as on every start but the first).
func BenchmarkNew(b *testing.B) {
	for _, kt := range []certs.KeyType{certs.KeyECDSAP256, certs.KeyRSA2048} {
		b.Run(string(kt), func(b *testing.B) {
			dir := b.TempDir()
			if _, _, err := loadOrCreateRoot(dir, kt, time.Now()); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				tb, err := New(Config{Dir: dir, KeyType: kt})
				if err != nil {
					b.Fatal(err)
				}
				tb.Close()
			}
		})
	}
}

// BenchmarkClientVerdict measures one mutual-TLS connection to the
// client-certificate endpoint: TCP, TLS 1.3 handshake with a client
// certificate, the server's judgement and the verdict frame.
func BenchmarkClientVerdict(b *testing.B) {
	tb := startTestbed(b)
	out := filepath.Join(b.TempDir(), "certs")
	certs, err := IssueClientCerts(ClientCertsConfig{Dir: tb.dir, Out: out})
	if err != nil {
		b.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certs[0].CertFile, certs[0].KeyFile)
	if err != nil {
		b.Fatal(err)
	}
	var ep Endpoint
	for _, e := range tb.Endpoints() {
		if e.ClientAuth == ClientAuthRequest {
			ep = e
		}
	}
	cfg := &tls.Config{ServerName: ep.ServerName, RootCAs: caPool(b, tb.CAFile()), Certificates: []tls.Certificate{cert}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d := tls.Dialer{Config: cfg}
		c, err := d.DialContext(ctx, "tcp", ep.Address)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := xmlsocket.NewReader(c, maxFrame).ReadFrame(); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
