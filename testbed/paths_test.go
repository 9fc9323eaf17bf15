package testbed

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"
)

// TestPathShapes reads what the path-building endpoints send and checks the
// shape each promises, so that a client passing them has met the trap and
// not a plain chain.
func TestPathShapes(t *testing.T) {
	tb := startTestbed(t)
	root := tb.caCertificate()
	sent := map[string][]*x509.Certificate{}
	for _, ep := range readManifest(t, tb.manifest) {
		switch ep.Name {
		case "cross-signed-expired", "reversed-chain", "shuffled-chain", "extra-certificates", "namesake-issuer", "ip-san-dns-constraint":
		default:
			continue
		}
		c, err := tls.Dial("tcp", ep.Address, &tls.Config{ServerName: ep.ServerName, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("%s: %v", ep.Name, err)
		}
		sent[ep.Name] = c.ConnectionState().PeerCertificates
		c.Close()
	}
	signed := func(child, parent *x509.Certificate) bool { return child.CheckSignatureFrom(parent) == nil }
	now := time.Now()

	if c := sent["cross-signed-expired"]; len(c) != 3 || !bytes.Equal(c[1].RawSubject, c[2].RawSubject) ||
		!bytes.Equal(c[1].RawSubjectPublicKeyInfo, c[2].RawSubjectPublicKeyInfo) ||
		!now.After(c[1].NotAfter) || c[1].Issuer.CommonName != retiredRootName || !signed(c[2], root) || !signed(c[0], c[1]) {
		t.Errorf("cross-signed-expired: want leaf, the intermediate cross-signed by the retired root (expired), the same signed by the root")
	}
	for name, order := range map[string][3]int{"reversed-chain": {1, 2, 3}, "shuffled-chain": {2, 3, 1}} {
		// order: the depth under the root of each intermediate sent.
		c := sent[name]
		if len(c) != 4 {
			t.Errorf("%s: %d certificates sent, want 4", name, len(c))
			continue
		}
		byDepth := map[int]*x509.Certificate{}
		for i, d := range order {
			byDepth[d] = c[1+i]
		}
		if !signed(byDepth[1], root) || !signed(byDepth[2], byDepth[1]) || !signed(byDepth[3], byDepth[2]) || !signed(c[0], byDepth[3]) {
			t.Errorf("%s: the intermediates are not sent in the order described", name)
		}
	}
	if c := sent["extra-certificates"]; len(c) != 6 || !signed(c[0], c[3]) || !signed(c[3], root) {
		t.Errorf("extra-certificates: want the leaf's issuer fourth among 6 certificates")
	}
	if c := sent["namesake-issuer"]; len(c) != 3 || !bytes.Equal(c[1].RawSubject, c[2].RawSubject) ||
		!bytes.Equal(c[1].SubjectKeyId, c[2].SubjectKeyId) || signed(c[0], c[1]) || !signed(c[0], c[2]) || !signed(c[1], root) {
		t.Errorf("namesake-issuer: want two namesakes of the same key identifier, the first not the leaf's issuer")
	}
	if c := sent["ip-san-dns-constraint"]; len(c) != 2 || len(c[0].DNSNames) != 0 || len(c[0].IPAddresses) == 0 ||
		len(c[1].PermittedDNSDomains) != 1 || len(c[1].PermittedIPRanges) != 0 {
		t.Errorf("ip-san-dns-constraint: want a leaf with IP addresses only under a DNS-only constraint")
	}
}
