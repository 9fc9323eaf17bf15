package secure

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// longChain builds what a hostile client can send within crypto/tls's
// 256 KiB limit on a Certificate message: a leaf and n-1 CA certificates that
// all name the same subject and issuer, so each one looks like the issuer of
// every other, while none verifies another (they carry one key and are
// signed with a second), so that every signature is checked in full, by
// crypto/x509 and by passerelle, and fails. One pair of ECDSA P-256 keys
// serves them all, so n in the hundreds takes milliseconds to make.
func longChain(tb testing.TB, n int) (certs []*x509.Certificate, leafKey crypto.Signer) {
	tb.Helper()
	held := testpki.NewKey(tb)
	return loopChain(tb, n, held, testpki.NewKey(tb)), held
}

// loopChain is longChain with the keys given: the certificates carry held's
// public key and are signed by signer.
func loopChain(tb testing.TB, n int, held, signer crypto.Signer) []*x509.Certificate {
	tb.Helper()
	loop := pkix.Name{CommonName: "loop"}
	now := time.Now()
	parent := &x509.Certificate{Subject: loop}
	issue := func(i int, subject pkix.Name, ca bool) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(int64(i + 1)),
			Subject:               subject,
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(time.Hour),
			BasicConstraintsValid: ca,
			IsCA:                  ca,
		}
		if ca {
			// No key usage (any use, RFC 5280 section 4.2.1.3) and a one-byte
			// key identifier, the same on all: 809 of them must still fit
			// in one Certificate message.
			tmpl.SubjectKeyId = []byte{1}
		}
		return testpki.Create(tb, tmpl, parent, held.Public(), signer)
	}
	certs := []*x509.Certificate{issue(0, pkix.Name{CommonName: "victim"}, false)}
	for i := 1; i < n; i++ {
		certs = append(certs, issue(i, loop, true))
	}
	return certs
}

// worstChain is the costliest chain the bounds let through: n certificates
// (the leaf and n-1 CA certificates) that all name the subject and issuer
// "loop" and one key identifier, carrying two keys in turn, each signed with
// the other. Every CA certificate really did sign every one of the other key,
// so each signature checked verifies and a search finds a new link at every
// step until its budget runs out; none is self-signed, none is trusted.
func worstChain(tb testing.TB, n int) (certs []*x509.Certificate, leafKey *ecdsa.PrivateKey) {
	tb.Helper()
	keys := [2]*ecdsa.PrivateKey{testpki.NewKey(tb), testpki.NewKey(tb)}
	loop := pkix.Name{CommonName: "loop"}
	keyID := []byte("loop")
	now := time.Now()
	issue := func(i int, subject pkix.Name, pub, signer *ecdsa.PrivateKey, ca bool) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(int64(i + 1)),
			Subject:               subject,
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(time.Hour),
			BasicConstraintsValid: true,
			IsCA:                  ca,
			AuthorityKeyId:        keyID,
		}
		if ca {
			tmpl.KeyUsage = x509.KeyUsageCertSign
			tmpl.SubjectKeyId = keyID
		}
		parent := &x509.Certificate{Subject: loop, SubjectKeyId: keyID}
		return testpki.Create(tb, tmpl, parent, &pub.PublicKey, signer)
	}
	// The leaf carries key 0 and is signed with key 1, as are the CA
	// certificates of key 0.
	certs = append(certs, issue(0, pkix.Name{CommonName: "victim"}, keys[0], keys[1], false))
	for i := 1; i < n; i++ {
		certs = append(certs, issue(i, loop, keys[i%2], keys[(i+1)%2], true))
	}
	return certs, keys[0]
}

// paddedChain is a leaf and n-1 unrelated certificates of about size bytes
// each, padded with a non-critical extension: few certificates, many bytes.
func paddedChain(tb testing.TB, n, size int) []*x509.Certificate {
	tb.Helper()
	key := testpki.NewKey(tb)
	var certs []*x509.Certificate
	for i := range n {
		tmpl := &x509.Certificate{
			SerialNumber:    big.NewInt(int64(i + 1)),
			Subject:         pkix.Name{CommonName: "padded"},
			NotBefore:       time.Now().Add(-time.Hour),
			NotAfter:        time.Now().Add(time.Hour),
			ExtraExtensions: []pkix.Extension{{Id: []int{1, 3, 6, 1, 4, 1, 55555, 7, 2}, Value: make([]byte, size)}},
		}
		certs = append(certs, testpki.Create(tb, tmpl, tmpl, &key.PublicKey, key))
	}
	return certs
}

// tlsCertificate is certs as a client presents them, with the leaf's key.
func tlsCertificate(certs []*x509.Certificate, key crypto.Signer) tls.Certificate {
	c := tls.Certificate{PrivateKey: key, Leaf: certs[0]}
	for _, x := range certs {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// TestClassifyLongChain: a peer that sends more certificates, or more bytes
// of them, than a chain may hold is refused before any signature is checked;
// one within the bounds costs passerelle's own search at most
// maxSignatureWork units of work (a P-256 check is one, an RSA 4096 check
// four), counted here, and the reason names the budget when no path was
// found within it.
func TestClassifyLongChain(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	long, _ := longChain(t, 809)
	worst, _ := worstChain(t, maxCertificates)
	padded := paddedChain(t, 10, 14<<10)
	// A TLS 1.3 Certificate message carries 5 bytes of framing per entry
	// and 4 more; crypto/tls accepts 256 KiB of it.
	size := 4
	for _, c := range long {
		size += len(c.Raw) + 5
	}
	if size > 256<<10 {
		t.Fatalf("the chain takes %d bytes, more than crypto/tls accepts in a Certificate message", size)
	}
	paddedSize := 0
	for _, c := range padded {
		paddedSize += len(c.Raw)
	}
	// The loop again with RSA 4096 keys, each check costing four units:
	// crypto/x509's search, which could cost 400, is not run, and
	// passerelle's own makes at most 25 checks.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		t.Fatal(err)
	}
	heavy := loopChain(t, maxCertificates, rsaKey, root.Key)
	if w := searchWork(heavy[0], heavy[1:]); w <= maxSignatureWork {
		t.Fatalf("crypto/x509's search of the RSA 4096 loop foreseen at %d units, within the budget", w)
	}
	opts := VerifyOptions{Roots: root.Pool(), Role: RoleClient, Revocation: RevocationOff, NoAIAFetch: true}
	const budget = "no path to a trusted root found within the budget of 100 signature checks (larger keys count as several) among the certificates the peer sent"
	tests := []struct {
		name       string
		certs      []*x509.Certificate
		status     Status
		reason     string
		sigsAtMost int
	}{
		{"809 certificates", long, StatusInvalidChain, "the peer sent 809 certificates; at most 64 are accepted", 0},
		{"one over the limit", long[:65], StatusInvalidChain, "the peer sent 65 certificates; at most 64 are accepted", 0},
		{"too many bytes", padded, StatusInvalidChain, fmt.Sprintf("the peer sent %d bytes of certificates; at most 131072 are accepted", paddedSize), 0},
		{"at the limit, no signature verifies", long[:64], StatusInvalidChain, budget, maxSignatureWork},
		{"at the limit, every signature verifies", worst, StatusInvalidChain, budget, maxSignatureWork},
		{"at the limit, RSA 4096 keys", heavy, StatusInvalidChain, budget, maxSignatureWork},
		{"eleven", long[:11], StatusUntrustedSigners, `issuer "CN=loop" of "loop" is not a trusted root and was not sent`, maxSignatureWork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := newSigBudget()
			v := classify(t.Context(), tt.certs, opts, sigs)
			if v.Status != tt.status || v.Reason != tt.reason {
				t.Errorf("got %s %q, want %s %q", v.Status, v.Reason, tt.status, tt.reason)
			}
			if sigs.used > tt.sigsAtMost {
				t.Errorf("%d units of signature work spent, want at most %d", sigs.used, tt.sigsAtMost)
			}
			t.Logf("%d units of signature work spent", sigs.used)
		})
	}
}

// TestBuildPathSignatureBudget: without the bounds on their number and
// size, ordering the 809 certificates stops once maxSignatureWork units
// (here as many P-256 checks) are spent.
func TestBuildPathSignatureBudget(t *testing.T) {
	long, _ := longChain(t, 809)
	sigs := newSigBudget()
	path, _, err := buildPath(long, nil, time.Now(), sigs)
	if !errors.Is(err, errSignatureBudget) || err.Error() != "no path to a trusted root found within the budget of 100 signature checks (larger keys count as several) among the certificates the peer sent" {
		t.Errorf("buildPath: %v", err)
	}
	if sigs.used != maxSignatureWork {
		t.Errorf("%d units of signature work spent, want %d", sigs.used, maxSignatureWork)
	}
	if len(path) > 2 {
		t.Errorf("path of %d certificates", len(path))
	}
}

// TestServerRefusesLongClientChain sends hostile chains as a client
// certificate over real TLS: 809 certificates, refused by their number, and
// the 64 of worstChain, judged within the signature budget. The server names
// the bound in the verdict (request) and in the refusal it logs (require).
func TestServerRefusesLongClientChain(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	server := root.Leaf(t, testpki.LeafOptions{}).TLS()
	long, longKey := longChain(t, 809)
	worst, worstKey := worstChain(t, maxCertificates)
	tests := []struct {
		name   string
		client tls.Certificate
		reason string
	}{
		{"809 certificates", tlsCertificate(long, longKey), "the peer sent 809 certificates; at most 64 are accepted"},
		{"64 certificates", tlsCertificate(worst, worstKey), "no path to a trusted root found within the budget of 100 signature checks (larger keys count as several) among the certificates the peer sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, ServerConfig{GetCertificate: staticCert(server), ClientAuth: ClientAuthRequest, ClientCAs: root.Pool()}, nil)
			c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: root.Pool(), Certificates: []tls.Certificate{tt.client}})
			if err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err != nil || line != "status invalidChain\n" {
				t.Errorf("greeting %q, %v", line, err)
			}

			ts = startServer(t, ServerConfig{GetCertificate: staticCert(server), ClientAuth: ClientAuthRequire, ClientCAs: root.Pool()}, nil)
			c, err = Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: root.Pool(), Certificates: []tls.Certificate{tt.client}})
			if err == nil {
				_, err = c.Read(make([]byte, 1))
				c.Close()
			}
			if err == nil {
				t.Fatal("a client with a hostile chain got in")
			}
			testutil.Eventually(t, "the refusal logged", 5*time.Second, func() bool {
				return strings.Contains(ts.logs.String(), `msg="client refused" remote_addr=`) && strings.Contains(ts.logs.String(), `status=invalidChain reason="`+tt.reason+`"`)
			})
		})
	}
}
