package secure

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs/revocation"
	"github.com/passerelle/passerelle/internal/testpki"
)

// world is a small PKI with its HTTP services on loopback: a trusted root
// (with an OCSP responder and a CRL), another root nobody trusts, and a
// server publishing issuer certificates at AIA caIssuers URLs.
type world struct {
	dir      string
	root     *testpki.CA
	other    *testpki.CA
	rootFile string

	rev             *revService
	revHTTP         *httptest.Server
	ocspURL, crlURL string
	aia             *httptest.Server
	aiaMu           sync.Mutex
	aiaCerts        map[string][]byte
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), aiaCerts: map[string][]byte{}}
	w.root = testpki.NewRoot(t, testpki.CAOptions{})
	w.other = testpki.NewRoot(t, testpki.CAOptions{CommonName: "someone else"})
	w.rootFile = w.root.WriteCert(t, w.dir, "root.pem")

	w.rev = newRevService(t, w.root)
	w.revHTTP = httptest.NewServer(w.rev)
	t.Cleanup(w.revHTTP.Close)
	w.ocspURL, w.crlURL = w.revHTTP.URL+"/ocsp", w.revHTTP.URL+"/crl"

	w.aia = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.aiaMu.Lock()
		der, ok := w.aiaCerts[r.URL.Path]
		w.aiaMu.Unlock()
		if !ok {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "application/pkix-cert")
		rw.Write(der)
	}))
	t.Cleanup(w.aia.Close)
	return w
}

// publish serves c at the AIA server and returns its URL.
func (w *world) publish(c *x509.Certificate, name string) string {
	w.aiaMu.Lock()
	defer w.aiaMu.Unlock()
	w.aiaCerts["/"+name] = c.Raw
	return w.aia.URL + "/" + name
}

// revoke puts the leaf on the root's revocation list.
func (w *world) revoke(t testing.TB, l *testpki.Leaf) {
	t.Helper()
	if err := w.rev.List.Revoke(l.Cert.SerialNumber, time.Now().Add(-time.Minute).Truncate(time.Second), revocation.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
}

// crlFile writes the root's current CRL as DER and returns its path.
func (w *world) crlFile(t testing.TB) string {
	t.Helper()
	der, err := w.rev.CRL.CRL()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(w.dir, "root.crl")
	if err := os.WriteFile(p, der, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// selfSigned makes a self-signed end-entity certificate for localhost.
func selfSigned(t testing.TB, client bool) *testpki.Leaf {
	t.Helper()
	key := testpki.NewKey(t)
	eku := x509.ExtKeyUsageServerAuth
	if client {
		eku = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber:          testpki.Serial(t),
		Subject:               pkix.Name{CommonName: "self-signed localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{eku},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	return &testpki.Leaf{Cert: testpki.Create(t, tmpl, tmpl, key.Public(), key), Key: key}
}

// tampered returns l with one byte of its signature flipped: the issuer's
// signature no longer verifies.
func tampered(t testing.TB, l *testpki.Leaf) *testpki.Leaf {
	t.Helper()
	der := bytes.Clone(l.Cert.Raw)
	der[len(der)-1] ^= 0x01
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testpki.Leaf{Cert: c, Key: l.Key, Chain: l.Chain}
}

var verifyCodeRE = regexp.MustCompile(`Verify return code: (\d+)`)

// opensslClientCode runs openssl s_client against addr and returns the
// verify code it reports.
func opensslClientCode(t testing.TB, addr, caFile, serverName string, extra ...string) int {
	t.Helper()
	args := []string{"s_client", "-connect", addr, "-CAfile", caFile}
	if serverName != "" {
		args = append(args, "-servername", serverName, "-verify_hostname", serverName)
	}
	args = append(args, extra...)
	out := runOpenSSL(t, nil, args...)
	m := verifyCodeRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("openssl s_client printed no verify code:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var verifyErrRE = regexp.MustCompile(`error (\d+) at \d+ depth`)

// opensslVerifyCode runs openssl verify on a certificate file (leaf then
// chain) for purpose and returns the first error code, 0 for OK.
func opensslVerifyCode(t testing.TB, dir string, l *testpki.Leaf, caFile, purpose string, extra ...string) int {
	t.Helper()
	leafFile := filepath.Join(dir, "verify-leaf.pem")
	os.WriteFile(leafFile, testpki.CertPEM(l.Cert), 0o600)
	args := []string{"verify", "-CAfile", caFile, "-purpose", purpose}
	if len(l.Chain) > 0 {
		var chain []byte
		for _, c := range l.Chain {
			chain = append(chain, testpki.CertPEM(c)...)
		}
		chainFile := filepath.Join(dir, "verify-chain.pem")
		os.WriteFile(chainFile, chain, 0o600)
		args = append(args, "-untrusted", chainFile)
	}
	args = append(args, extra...)
	args = append(args, leafFile)
	out := runOpenSSL(t, nil, args...)
	if m := verifyErrRE.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if bytes.Contains([]byte(out), []byte(": OK")) {
		return 0
	}
	t.Fatalf("openssl verify said neither OK nor an error:\n%s", out)
	return -1
}

func runOpenSSL(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, _ := cmd.CombinedOutput() // non-zero exits are expected for defects
	if ctx.Err() != nil {
		t.Fatalf("openssl %v timed out:\n%s", args, out)
	}
	return string(out)
}

// ocspStapled returns a tls.Certificate for l with the responder's current
// answer stapled.
func (w *world) stapled(t testing.TB, l *testpki.Leaf) tls.Certificate {
	t.Helper()
	resp, err := w.rev.Responder.Response(l.Cert.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	c := l.TLS()
	c.OCSPStaple = resp
	return c
}

// revService is a CA's revocation list with its OCSP responder at /ocsp and
// its CRL at /crl.
type revService struct {
	List      *revocation.List
	Responder *revocation.Responder
	CRL       *revocation.CRLPublisher
	mux       http.ServeMux
}

func newRevService(t testing.TB, ca *testpki.CA) *revService {
	t.Helper()
	s := &revService{List: revocation.NewList()}
	var err error
	if s.Responder, err = revocation.NewResponder(revocation.ResponderConfig{Issuer: ca.Cert, Signer: ca.Key, List: s.List}); err != nil {
		t.Fatal(err)
	}
	if s.CRL, err = revocation.NewCRLPublisher(revocation.CRLConfig{Issuer: ca.Cert, Signer: ca.Key, List: s.List}); err != nil {
		t.Fatal(err)
	}
	s.mux.Handle("POST /ocsp", s.Responder)
	s.mux.Handle("GET /crl", s.CRL)
	return s
}

func (s *revService) ServeHTTP(rw http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(rw, r) }
