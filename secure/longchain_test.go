package secure

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// longChain builds what a hostile client can send within crypto/tls's
// 256 KiB limit on a Certificate message: a leaf and n-1 certificates that
// all name the same subject and issuer, so each one looks like the issuer
// of every other, while none verifies another (they carry one key and are
// signed with a second). One pair of keys serves them all, so n in the
// hundreds takes milliseconds to make.
func longChain(tb testing.TB, n int) (certs []*x509.Certificate, leafKey *ecdsa.PrivateKey) {
	tb.Helper()
	held, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	loop := pkix.Name{CommonName: "loop"}
	now := time.Now()
	parent := &x509.Certificate{Subject: loop}
	issue := func(i int, subject pkix.Name) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 1)),
			Subject:      subject,
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &held.PublicKey, signer)
		if err != nil {
			tb.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	certs = append(certs, issue(0, pkix.Name{CommonName: "victim"}))
	for i := 1; i < n; i++ {
		certs = append(certs, issue(i, loop))
	}
	return certs, held
}

// tlsCertificate is certs as a client presents them, with the leaf's key.
func tlsCertificate(certs []*x509.Certificate, key *ecdsa.PrivateKey) tls.Certificate {
	c := tls.Certificate{PrivateKey: key, Leaf: certs[0]}
	for _, x := range certs {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// TestClassifyLongChain: a peer that sends hundreds of certificates, each
// one looking like the issuer of every other, is refused before any
// signature is checked; one within the limit costs a bounded number of
// checks.
func TestClassifyLongChain(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	long, _ := longChain(t, 809)
	size := 0
	for _, c := range long {
		size += len(c.Raw)
	}
	if size > 256<<10 {
		t.Fatalf("the chain is %d bytes, more than crypto/tls accepts in a Certificate message", size)
	}
	opts := VerifyOptions{Roots: root.Pool(), Role: RoleClient, Revocation: RevocationOff, NoAIAFetch: true}
	tests := []struct {
		name       string
		certs      []*x509.Certificate
		status     Status
		reason     string
		sigsAtMost int
	}{
		{"809 certificates", long, StatusInvalidChain, "the peer sent 808 certificates besides its own; at most 10 are accepted", 0},
		{"one over the limit", long[:12], StatusInvalidChain, "the peer sent 11 certificates besides its own; at most 10 are accepted", 0},
		{"at the limit", long[:11], StatusUntrustedSigners, `issuer "CN=loop" of "loop" is not a trusted root and was not sent`, maxSignatureChecks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := newSigBudget()
			v := classify(t.Context(), tt.certs, opts, sigs)
			if v.Status != tt.status || v.Reason != tt.reason {
				t.Errorf("got %s %q, want %s %q", v.Status, v.Reason, tt.status, tt.reason)
			}
			if sigs.used > tt.sigsAtMost {
				t.Errorf("%d signatures checked, want at most %d", sigs.used, tt.sigsAtMost)
			}
			t.Logf("%d signatures checked", sigs.used)
		})
	}
}

// TestBuildPathSignatureBudget: without the limit on their number, ordering
// the 809 certificates stops after maxSignatureChecks checks.
func TestBuildPathSignatureBudget(t *testing.T) {
	long, _ := longChain(t, 809)
	sigs := newSigBudget()
	path, _, err := buildPath(long, sigs)
	if !errors.Is(err, errSignatureBudget) || err.Error() != "ordering the certificates the peer sent took more than 100 signature checks" {
		t.Errorf("buildPath: %v", err)
	}
	if sigs.used != maxSignatureChecks {
		t.Errorf("%d signatures checked, want %d", sigs.used, maxSignatureChecks)
	}
	if len(path) > 2 {
		t.Errorf("path of %d certificates", len(path))
	}
}

// TestServerRefusesLongClientChain sends the 809 certificates as a client
// certificate over real TLS: the server names the limit in the verdict
// (request) and in the refusal it logs (require).
func TestServerRefusesLongClientChain(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	server := root.Leaf(t, testpki.LeafOptions{}).TLS()
	long, key := longChain(t, 809)
	client := tlsCertificate(long, key)
	const reason = "the peer sent 808 certificates besides its own; at most 10 are accepted"

	ts := startServer(t, ServerConfig{GetCertificate: staticCert(server), ClientAuth: ClientAuthRequest, ClientCAs: root.Pool()}, nil)
	c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: root.Pool(), Certificates: []tls.Certificate{client}})
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || line != "status invalidChain\n" {
		t.Errorf("greeting %q, %v", line, err)
	}

	ts = startServer(t, ServerConfig{GetCertificate: staticCert(server), ClientAuth: ClientAuthRequire, ClientCAs: root.Pool()}, nil)
	c, err = Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: root.Pool(), Certificates: []tls.Certificate{client}})
	if err == nil {
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("a client with 809 certificates got in")
	}
	testutil.Eventually(t, "the refusal logged", 5*time.Second, func() bool {
		return strings.Contains(ts.logs.String(), `msg="client refused" remote_addr=`) && strings.Contains(ts.logs.String(), `status=invalidChain reason="`+reason+`"`)
	})
}
