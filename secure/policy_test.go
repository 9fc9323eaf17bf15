package secure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// TestRequireAnyLetsEveryCertificateIn: ClientAuthRequireAny refuses a
// client without a certificate with crypto/tls's own alert, and lets a bad
// certificate in so the handler can say what is wrong with it.
func TestRequireAnyLetsEveryCertificateIn(t *testing.T) {
	w := newWorld(t)
	ts := startServer(t, ServerConfig{
		GetCertificate: staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS()),
		ClientAuth:     ClientAuthRequireAny,
		ClientCAs:      w.root.Pool(),
	}, verdictHandler)

	expired := w.root.Leaf(t, testpki.LeafOptions{Client: true, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: w.root.Pool(), Certificates: []tls.Certificate{expired.TLS()}})
	if err != nil {
		t.Fatalf("Dial with an expired certificate: %v", err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(got), "status expired\n") {
		t.Errorf("server said %q, want status expired", got)
	}

	// TLS 1.3: the refusal arrives as an alert on the first read.
	c, err = Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: w.root.Pool()})
	if err == nil {
		_, err = io.ReadAll(c)
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("client without a certificate: %v, want the certificate_required alert", err)
	}
	tc, err := tls.Dial("tcp", ts.addr, &tls.Config{ServerName: "localhost", RootCAs: w.root.Pool(), MaxVersion: tls.VersionTLS12})
	if err == nil {
		tc.Close()
		t.Fatal("TLS 1.2 handshake without a client certificate succeeded")
	}
	contains(t, err.Error(), "handshake failure")
	testutil.Eventually(t, "the refusal in the log", 5*time.Second, func() bool {
		return strings.Contains(ts.logs.String(), "client didn't provide a certificate")
	})
	if got := ClientAuthRequireAny.String(); got != "require-any" {
		t.Errorf("String() = %q", got)
	}
}

// TestGetClientPolicyPerServerName: one listener, a policy per server name,
// CRLs that change while the server runs, and a refused unknown name.
func TestGetClientPolicyPerServerName(t *testing.T) {
	w := newWorld(t)
	serverLeaf := w.root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"open.example", "members.example"}})
	var crls atomic.Pointer[[]*x509.RevocationList]
	crls.Store(&[]*x509.RevocationList{})
	ts := startServer(t, ServerConfig{
		GetCertificate: staticCert(serverLeaf.TLS()),
		ClientAuth:     ClientAuthRequest, // overridden for every ClientHello
		GetClientPolicy: func(hello *tls.ClientHelloInfo) (ClientPolicy, error) {
			switch hello.ServerName {
			case "open.example":
				return ClientPolicy{}, nil
			case "members.example":
				return ClientPolicy{ClientAuth: ClientAuthRequire, ClientCAs: w.root.Pool(), CRLs: *crls.Load()}, nil
			}
			return ClientPolicy{}, errors.New("no site is named " + hello.ServerName)
		},
	}, verdictHandler)

	member := w.root.Leaf(t, testpki.LeafOptions{Client: true})
	dial := func(name string) (string, error) {
		c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: name, RootCAs: w.root.Pool(), Certificates: []tls.Certificate{member.TLS()}})
		if err != nil {
			return "", err
		}
		defer c.Close()
		got, err := io.ReadAll(c)
		return string(got), err
	}
	if got, err := dial("open.example"); err != nil || !strings.HasPrefix(got, "status unknown\n") {
		t.Errorf("open.example (no certificate asked for): %q, %v; want status unknown", got, err)
	}
	if got, err := dial("members.example"); err != nil || !strings.HasPrefix(got, "status trusted\n") {
		t.Errorf("members.example: %q, %v; want status trusted", got, err)
	}

	// Revoke the member: the next handshake sees the new CRL.
	w.revoke(t, member)
	revoked := loadCRLs(t, w.crlFile(t))
	crls.Store(&revoked)
	if got, err := dial("members.example"); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("revoked member: %q, %v; want a bad certificate alert", got, err)
	}
	testutil.Eventually(t, "the refusal in the log", 5*time.Second, func() bool {
		return strings.Contains(ts.logs.String(), `msg="client refused"`) && strings.Contains(ts.logs.String(), "status=revoked")
	})

	if got, err := dial("elsewhere.example"); err == nil {
		t.Errorf("elsewhere.example: %q, want a refused handshake", got)
	}
	testutil.Eventually(t, "the unknown name in the log", 5*time.Second, func() bool {
		return strings.Contains(ts.logs.String(), "no site is named elsewhere.example")
	})
}
