package secure

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
)

func TestDialTrustedEcho(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	inter := root.Intermediate(t, testpki.CAOptions{})
	ts := tlsServer(t, inter.Leaf(t, testpki.LeafOptions{}))

	c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: root.Pool()})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if c.Status() != StatusTrusted {
		t.Fatalf("status %q (%s), want trusted", c.Status(), c.Verdict().Reason)
	}
	if got := len(c.Verdict().Chain); got != 3 {
		t.Errorf("chain length %d, want 3 (leaf, intermediate, root)", got)
	}
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	if line != "status unknown\n" {
		t.Errorf("greeting %q, want %q", line, "status unknown\n")
	}
	io.WriteString(c, "hello")
	buf := make([]byte, len("Echo -- hello"))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "Echo -- hello" {
		t.Errorf("echo %q, %v", buf, err)
	}
	if v := c.ConnectionState().Version; v < MinVersion {
		t.Errorf("TLS version %x below minimum", v)
	}
}

// TestDialStatuses covers the server-certificate statuses a client sees.
func TestDialStatuses(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	other := testpki.NewRoot(t, testpki.CAOptions{CommonName: "someone else"})
	now := time.Now()
	tests := []struct {
		name       string
		leaf       *testpki.Leaf
		serverName string
		want       Status
		reason     string
	}{
		{"trusted by IP", root.Leaf(t, testpki.LeafOptions{}), "", StatusTrusted, "certificate chain verified for 127.0.0.1"},
		{"expired", root.Leaf(t, testpki.LeafOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}), "localhost", StatusExpired, "certificate expired on " + now.Add(-24*time.Hour).UTC().Format(time.RFC3339)},
		{"not yet valid", root.Leaf(t, testpki.LeafOptions{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)}), "localhost", StatusNotYetValid, "certificate is not valid before " + now.Add(24*time.Hour).UTC().Format(time.RFC3339)},
		{"name mismatch", root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"example.org"}}), "localhost", StatusPrincipalMismatch, "certificate is valid for example.org, not localhost"},
		{"ip mismatch", root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}}), "", StatusPrincipalMismatch, "certificate is valid for localhost, not 127.0.0.1"},
		{"other root", other.Leaf(t, testpki.LeafOptions{}), "localhost", StatusUntrustedSigners, `issuer "CN=someone else,O=passerelle tests" of "localhost" is not a trusted root and was not sent`},
		{"client certificate as server", root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}), "localhost", StatusInvalid, "certificate is not for server authentication (extended key usage)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := tlsServer(t, tt.leaf)
			c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: tt.serverName, RootCAs: root.Pool(), Revocation: RevocationOff})
			var v Verdict
			if tt.want == StatusTrusted {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				v = c.Verdict()
			} else {
				var he *HandshakeError
				if !errors.As(err, &he) {
					t.Fatalf("Dial error %v (%T), want *HandshakeError", err, err)
				}
				v = he.Verdict
				if len(v.Certificates) == 0 || !v.Certificates[0].Equal(tt.leaf.Cert) {
					t.Errorf("verdict does not carry the presented leaf")
				}
				if want := "tls handshake: server certificate " + string(tt.want) + ": " + tt.reason; err.Error() != want {
					t.Errorf("error %q, want %q", err.Error(), want)
				}
			}
			if v.Status != tt.want || v.Reason != tt.reason {
				t.Errorf("verdict %s %q, want %s %q", v.Status, v.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestDialRefusedIsNotAHandshakeError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Dial(dialCtx(t), addr, ClientConfig{})
	var he *HandshakeError
	if err == nil || errors.As(err, &he) {
		t.Fatalf("Dial to a closed port: %v, want a plain dial error", err)
	}
}

// TestDialNotTLS: a server that answers plain text gives invalid, with no
// certificate judged.
func TestDialNotTLS(t *testing.T) {
	ts := startServer(t, ServerConfig{Plain: true}, echoHandler)
	_, err := Dial(dialCtx(t), ts.addr, ClientConfig{})
	var he *HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("Dial: %v, want *HandshakeError", err)
	}
	want := "handshake failed: tls: first record does not look like a TLS handshake"
	if he.Verdict.Status != StatusInvalid || he.Verdict.Reason != want || he.State != nil {
		t.Errorf("verdict %s %q (state %v), want invalid %q", he.Verdict.Status, he.Verdict.Reason, he.State, want)
	}
}

// TestDialSilentServer: no answer before the deadline leaves the status
// unknown, as AIR's before any handshake result.
func TestDialSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, ln.Addr().String(), ClientConfig{})
	var he *HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("Dial: %v, want *HandshakeError", err)
	}
	if he.Verdict.Status != StatusUnknown || he.Verdict.Reason != "no TLS handshake answer before the deadline" {
		t.Errorf("verdict %s %q", he.Verdict.Status, he.Verdict.Reason)
	}
}
