package secure

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
)

// reissue signs a copy of c (its subject, key identifier and the key pub)
// by ca, valid from notBefore to notAfter: a cross-signed certificate when
// ca is another authority, a decoy when pub is another key.
func reissue(tb testing.TB, c *x509.Certificate, pub crypto.PublicKey, ca *testpki.CA, notBefore, notAfter time.Time) *x509.Certificate {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          testpki.Serial(tb),
		Subject:               c.Subject,
		SubjectKeyId:          c.SubjectKeyId,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              c.KeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  c.IsCA,
	}
	return testpki.Create(tb, tmpl, ca.Cert, pub, ca.Key)
}

// TestManyCertificatesOneValidPath: a server sends 35 certificates, among
// them one valid path to the trusted root, sent last, behind cross-signs of
// its intermediate by unknown and expired authorities, issuers with its
// intermediate's subject and key identifier but another key, and unrelated
// authorities. A client finds the path: trusted, over real TLS.
func TestManyCertificatesOneValidPath(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	inter := root.Intermediate(t, testpki.CAOptions{CommonName: "passerelle test intermediate"})
	leaf := inter.Leaf(t, testpki.LeafOptions{})
	now := time.Now()
	var decoys []*x509.Certificate
	for i := range 11 {
		// Cross-signed by an authority the client does not trust; every
		// other one also expired.
		other := testpki.NewRoot(t, testpki.CAOptions{CommonName: "retired root"})
		nb, na := now.Add(-time.Hour), now.Add(time.Hour)
		if i%2 == 0 {
			nb, na = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
		}
		decoys = append(decoys, reissue(t, inter.Cert, inter.Key.Public(), other, nb, na))
	}
	for range 11 {
		// The intermediate's subject and key identifier, another key,
		// signed by the trusted root itself.
		decoys = append(decoys, reissue(t, inter.Cert, testpki.NewKey(t).Public(), root, now.Add(-time.Hour), now.Add(time.Hour)))
	}
	for range 11 {
		decoys = append(decoys, root.Intermediate(t, testpki.CAOptions{CommonName: "unrelated intermediate"}).Cert)
	}
	certs := append(append([]*x509.Certificate{leaf.Cert}, decoys...), inter.Cert)
	if len(certs) != 35 {
		t.Fatalf("%d certificates, want 35", len(certs))
	}
	served := tls.Certificate{PrivateKey: leaf.Key, Leaf: leaf.Cert}
	for _, c := range certs {
		served.Certificate = append(served.Certificate, c.Raw)
	}
	ts := startServer(t, ServerConfig{GetCertificate: staticCert(served), Revocation: RevocationOff}, nil)
	c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: root.Pool(), Revocation: RevocationOff})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	v := c.Verdict()
	if v.Status != StatusTrusted || len(v.Certificates) != 35 {
		t.Fatalf("status %s (%s) over %d certificates, want trusted over 35", v.Status, v.Reason, len(v.Certificates))
	}
	if len(v.Chain) != 3 || v.Chain[1] != v.Certificates[34] {
		t.Errorf("path of %d certificates, want leaf, the intermediate sent last, root", len(v.Chain))
	}

	// When crypto/x509 finds no good path (here: the leaf is not for
	// clients), passerelle's own ordering still takes the good
	// intermediate, the one that verifies and is inside its dates.
	sigs := newSigBudget()
	cv := classify(t.Context(), certs, VerifyOptions{Roots: root.Pool(), Role: RoleClient, Revocation: RevocationOff, NoAIAFetch: true}, sigs)
	if cv.Status != StatusInvalid || cv.Reason != "certificate is not for client authentication (extended key usage)" {
		t.Errorf("as a client certificate: %s %q", cv.Status, cv.Reason)
	}
	if sigs.used > maxSignatureWork {
		t.Errorf("%d units of signature work spent", sigs.used)
	}
}
