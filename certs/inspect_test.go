package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

func TestDescribe(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{CommonName: "Inspect Root"})
	now := time.Now()
	leaf := root.Leaf(t, testpki.LeafOptions{
		CommonName: "app.example.com",
		DNSNames:   []string{"app.example.com", "*.app.example.com"},
		IPs:        []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		Emails:     []string{"ops@example.com"},
		URIs:       []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/web"}},
		NotBefore:  now.Add(-time.Hour),
		NotAfter:   now.Add(10*24*time.Hour + time.Hour),
		KeyUsage:   x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		OCSPServer: []string{"http://ocsp.example.com"},
	}).Cert

	info := Describe(leaf, now)
	checks := []struct{ field, got, want string }{
		{"Subject", info.Subject, "CN=app.example.com,O=passerelle tests"},
		{"Issuer", info.Issuer, "CN=Inspect Root,O=passerelle tests"},
		{"CommonName", info.CommonName, "app.example.com"},
		{"DNSNames", strings.Join(info.DNSNames, " "), "app.example.com *.app.example.com"},
		{"IPAddresses", strings.Join(info.IPAddresses, " "), "127.0.0.1 ::1"},
		{"EmailAddresses", strings.Join(info.EmailAddresses, " "), "ops@example.com"},
		{"URIs", strings.Join(info.URIs, " "), "spiffe://example.org/web"},
		{"Validity", info.Validity, "valid"},
		{"KeyType", info.KeyType, "ECDSA P-256"},
		{"SignatureAlgorithm", info.SignatureAlgorithm, "ECDSA-SHA256"},
		{"KeyUsage", strings.Join(info.KeyUsage, " "), "digitalSignature keyEncipherment"},
		{"ExtKeyUsage", strings.Join(info.ExtKeyUsage, " "), "serverAuth"},
		{"OCSPServers", strings.Join(info.OCSPServers, " "), "http://ocsp.example.com"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if info.DaysLeft != 10 || info.KeyBits != 256 || info.IsCA || info.SelfSigned || info.MaxPathLen != nil {
		t.Errorf("DaysLeft %d KeyBits %d IsCA %v SelfSigned %v MaxPathLen %v, want 10 256 false false nil",
			info.DaysLeft, info.KeyBits, info.IsCA, info.SelfSigned, info.MaxPathLen)
	}

	// The fingerprint, serial and pin agree with openssl.
	pemData := testpki.CertPEM(leaf)
	fp := opensslOut(t, pemData, "x509", "-noout", "-fingerprint", "-sha256")
	if want := "sha256 Fingerprint=" + info.SHA256Fingerprint; !strings.EqualFold(fp, want) {
		t.Errorf("fingerprint: openssl %q, Describe %q", fp, want)
	}
	serial := opensslOut(t, pemData, "x509", "-noout", "-serial")
	if want := "serial=" + strings.ReplaceAll(info.Serial, ":", ""); !strings.EqualFold(serial, want) {
		t.Errorf("serial: openssl %q, Describe %q", serial, want)
	}
	pin := opensslPipe(t, pemData, "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64")
	if pin != info.SPKIPin {
		t.Errorf("SPKI pin: openssl %q, Describe %q", pin, info.SPKIPin)
	}

	rootInfo := Describe(root.Cert, now)
	if !rootInfo.IsCA || !rootInfo.SelfSigned || strings.Join(rootInfo.KeyUsage, " ") != "digitalSignature keyCertSign cRLSign" {
		t.Errorf("root: IsCA %v SelfSigned %v KeyUsage %v", rootInfo.IsCA, rootInfo.SelfSigned, rootInfo.KeyUsage)
	}
}

func TestDescribeValidity(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	now := time.Now()
	tests := []struct {
		name      string
		nb, na    time.Time
		validity  string
		daysLeft  int
		untilText string
	}{
		{"valid", now.Add(-time.Hour), now.Add(36 * time.Hour), "valid", 1, "(1 day left)"},
		{"expired", now.Add(-10 * 24 * time.Hour), now.Add(-3*24*time.Hour - time.Hour), "expired", -4, "(EXPIRED 4 days ago)"},
		{"not yet valid", now.Add(2 * 24 * time.Hour), now.Add(5 * 24 * time.Hour), "not yet valid", 4, "(NOT YET VALID)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := root.Leaf(t, testpki.LeafOptions{NotBefore: tt.nb, NotAfter: tt.na}).Cert
			info := Describe(c, now)
			if info.Validity != tt.validity || info.DaysLeft != tt.daysLeft {
				t.Fatalf("Validity %q DaysLeft %d, want %q %d", info.Validity, info.DaysLeft, tt.validity, tt.daysLeft)
			}
			var sb strings.Builder
			if err := info.WriteText(&sb, ""); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sb.String(), tt.untilText) {
				t.Fatalf("text lacks %q:\n%s", tt.untilText, sb.String())
			}
		})
	}
}

func TestReadCertificates(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	inter := root.Intermediate(t, testpki.CAOptions{})
	leaf := inter.Leaf(t, testpki.LeafOptions{})
	p12, err := EncodePKCS12(leaf.Key, leaf.Cert, []*x509.Certificate{inter.Cert, root.Cert}, "s3cret", P12Legacy)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := leaf.KeyPEM(t)

	tests := []struct {
		name     string
		data     []byte
		password string
		format   string
		n        int
		hasKey   bool
		wantErr  string
	}{
		{"PEM chain", leaf.ChainPEM(), "", FormatPEM, 2, false, ""},
		{"PEM with key", append(append([]byte{}, keyPEM...), leaf.ChainPEM()...), "", FormatPEM, 2, true, ""},
		{"DER", leaf.Cert.Raw, "", FormatDER, 1, false, ""},
		{"DER concatenated", append(append([]byte{}, leaf.Cert.Raw...), inter.Cert.Raw...), "", FormatDER, 2, false, ""},
		{"PKCS#12", p12, "s3cret", FormatPKCS12, 3, true, ""},
		{"PKCS#12 wrong password", p12, "nope", "", 0, false, "PKCS#12: wrong PKCS#12 password"},
		{"empty", []byte("  \n"), "", "", 0, false, "empty file"},
		{"PEM key only", keyPEM, "", "", 0, false, "PEM data holds no CERTIFICATE block (found PRIVATE KEY)"},
		{"PEM garbage", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"), "", "", 0, false, "PEM data holds no valid block"},
		{"PEM bad certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 1, 2, 3}}), "", "", 0, false,
			"PEM certificate 1: x509: malformed tbs certificate"},
		{"garbage", []byte("hello world"), "", "", 0, false, "not a certificate file: neither PEM, a DER certificate nor PKCS#12"},
		{"other DER", []byte{0x30, 0x03, 0x02, 0x01, 0x05}, "", "", 0, false,
			"not a certificate file: neither PEM, a DER certificate nor PKCS#12 (PKCS#12: pkcs12: error reading P12 data: asn1: syntax error: sequence truncated)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadCertificates(tt.data, tt.password)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error:\n got  %v\n want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Format != tt.format || len(f.Certificates) != tt.n || f.HasKey != tt.hasKey {
				t.Fatalf("got %s, %d certificates, key %v; want %s, %d, %v", f.Format, len(f.Certificates), f.HasKey, tt.format, tt.n, tt.hasKey)
			}
			if !f.Certificates[0].Equal(leaf.Cert) {
				t.Fatal("first certificate is not the leaf")
			}
		})
	}
	if _, err := ReadCertificates(p12, "nope"); !errors.Is(err, ErrP12Password) {
		t.Fatalf("wrong password error %v does not wrap ErrP12Password", err)
	}
}

func TestFetchChain(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	inter := root.Intermediate(t, testpki.CAOptions{})
	// Deliberately expired: inspection reads any chain.
	leaf := inter.Leaf(t, testpki.LeafOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS()},
		NextProtos:   []string{"xmlsocket"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var gotSNI = make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err == nil {
			gotSNI <- tc.ConnectionState().ServerName
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live, err := FetchChain(ctx, ln.Addr().String(), "chat.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(live.Certificates) != 2 || !live.Certificates[0].Equal(leaf.Cert) || !live.Certificates[1].Equal(inter.Cert) {
		t.Fatalf("got %d certificates, want the leaf and the intermediate", len(live.Certificates))
	}
	if live.TLSVersion != "TLS 1.3" || live.ServerName != "chat.example.com" {
		t.Fatalf("TLSVersion %q ServerName %q", live.TLSVersion, live.ServerName)
	}
	if sni := <-gotSNI; sni != "chat.example.com" {
		t.Fatalf("server saw SNI %q", sni)
	}

	if _, err := FetchChain(ctx, "localhost", ""); err == nil || err.Error() != `address "localhost": want HOST:PORT: address localhost: missing port in address` {
		t.Fatalf("bad address error: %v", err)
	}
}

func opensslOut(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	testutil.Tool(t, "openssl")
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = strings.NewReader(string(stdin))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func opensslPipe(t *testing.T, stdin []byte, script string) string {
	t.Helper()
	testutil.Tool(t, "openssl")
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdin = strings.NewReader(string(stdin))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestWriteTextEscapesPeerText checks that names chosen by a certificate's
// author reach the terminal as visible escapes: a certificate read from a
// file or a live server is peer input.
func TestWriteTextEscapesPeerText(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{CommonName: "root \u009b2J\u202eevil"})
	leaf := root.Leaf(t, testpki.LeafOptions{
		CommonName: "\x1b]2;owned\x07",
		DNSNames:   []string{"evil\x1b[2J.example.com"},
		OCSPServer: []string{"http://ocsp.example.com/\x1b[H"},
	}).Cert
	var sb strings.Builder
	if err := Describe(leaf, time.Now()).WriteText(&sb, "  "); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, want := range []string{
		"  Subject:        CN=\\x1b]2\\;owned\\x07,O=passerelle tests\n",
		"  Issuer:         CN=root \\u009b2J\\u202eevil,O=passerelle tests\n",
		"  Names:          DNS:evil\\x1b[2J.example.com\n",
		"  OCSP:           http://ocsp.example.com/\\x1b[H\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\x07\u009b\u202e") {
		t.Errorf("raw control characters reached the output:\n%q", out)
	}
}
