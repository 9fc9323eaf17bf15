package secure

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
)

// TestClassifyPrecedence checks the order of the rule table in doc.go when
// several defects apply at once.
func TestClassifyPrecedence(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	other := testpki.NewRoot(t, testpki.CAOptions{CommonName: "someone else"})
	past := testpki.LeafOptions{DNSNames: []string{"example.org"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}
	wrongUse := past
	wrongUse.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	badInter := root.Intermediate(t, testpki.CAOptions{NotCA: true})
	tests := []struct {
		name string
		leaf *testpki.Leaf
		want Status
	}{
		{"untrusted beats everything", other.Leaf(t, wrongUse), StatusUntrustedSigners},
		{"broken chain beats usage and dates", badInter.Leaf(t, wrongUse), StatusInvalidChain},
		{"usage beats dates", root.Leaf(t, wrongUse), StatusInvalid},
		{"dates beat the name", root.Leaf(t, past), StatusExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs := append([]*x509.Certificate{tt.leaf.Cert}, tt.leaf.Chain...)
			v := Classify(context.Background(), certs, VerifyOptions{Roots: root.Pool(), Name: "localhost", Revocation: RevocationOff})
			if v.Status != tt.want {
				t.Errorf("status %s (%s), want %s", v.Status, v.Reason, tt.want)
			}
		})
	}
}

func TestClassifyEdges(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	inter := root.Intermediate(t, testpki.CAOptions{CommonName: "inter"})
	leaf := inter.Leaf(t, testpki.LeafOptions{})
	ctx := context.Background()
	opts := VerifyOptions{Roots: root.Pool(), Name: "localhost", Revocation: RevocationOff}

	if v := Classify(ctx, nil, opts); v.Status != StatusInvalid || v.Reason != "no certificate presented" {
		t.Errorf("empty chain: %s %q", v.Status, v.Reason)
	}
	// Out of order, with an unrelated extra certificate, as some servers send.
	mixed := []*x509.Certificate{leaf.Cert, testpki.NewRoot(t, testpki.CAOptions{CommonName: "stray"}).Cert, inter.Cert}
	if v := Classify(ctx, mixed, opts); v.Status != StatusTrusted || len(v.Chain) != 3 {
		t.Errorf("mixed chain: %s %q, path %d", v.Status, v.Reason, len(v.Chain))
	}
	// The intermediate itself trusted as an anchor.
	ip := x509.NewCertPool()
	ip.AddCert(inter.Cert)
	o := opts
	o.Roots = ip
	if v := Classify(ctx, []*x509.Certificate{leaf.Cert}, o); v.Status != StatusTrusted {
		t.Errorf("intermediate as anchor: %s %q", v.Status, v.Reason)
	}
	// A judgement at another time: Now moves the dates, not the clock.
	o = opts
	o.Now = leaf.Cert.NotAfter.Add(time.Minute)
	if v := Classify(ctx, append([]*x509.Certificate{leaf.Cert}, leaf.Chain...), o); v.Status != StatusExpired {
		t.Errorf("judged after notAfter: %s %q", v.Status, v.Reason)
	}
	// A self-signed certificate trusted by pinning it as a root.
	self := selfSigned(t, false)
	pin := x509.NewCertPool()
	pin.AddCert(self.Cert)
	if v := Classify(ctx, []*x509.Certificate{self.Cert}, VerifyOptions{Roots: pin, Name: "localhost"}); v.Status != StatusTrusted || len(v.Chain) != 1 {
		t.Errorf("pinned self-signed: %s %q", v.Status, v.Reason)
	}
	// A client certificate role with no name to check.
	cl := root.Leaf(t, testpki.LeafOptions{Client: true, Emails: []string{"a@example.org"}})
	if v := Classify(ctx, []*x509.Certificate{cl.Cert}, VerifyOptions{Roots: root.Pool(), Role: RoleClient, Revocation: RevocationOff}); v.Status != StatusTrusted || v.Reason != "certificate chain verified for client authentication" {
		t.Errorf("client role: %s %q", v.Status, v.Reason)
	}
}

func TestParseModes(t *testing.T) {
	for in, want := range map[string]RevocationMode{"off": RevocationOff, "soft": RevocationSoft, "": RevocationSoft, "hard-fail": RevocationHard} {
		if got, err := ParseRevocationMode(in); err != nil || got != want {
			t.Errorf("ParseRevocationMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseRevocationMode("sometimes"); err == nil || err.Error() != `revocation mode "sometimes": want off, soft or hard` {
		t.Errorf("bad mode: %v", err)
	}
	if _, err := ParseClientAuth("always"); err == nil || err.Error() != `client auth "always": want none, request or require` {
		t.Errorf("bad client auth: %v", err)
	}
	if got, _ := ParseClientAuth("require"); got != ClientAuthRequire || got.String() != "require" {
		t.Errorf("ParseClientAuth(require) = %v", got)
	}
}
