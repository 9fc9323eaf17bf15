package revocation

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"golang.org/x/crypto/ocsp"
)

func TestCheckNetworkSources(t *testing.T) {
	revokedAt := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		name       string
		sources    Sources
		ocsp, crl  bool
		revoke     bool
		unknown    bool
		wantStatus Status
		wantSource string
	}{
		{name: "ocsp good", sources: UseOCSP, ocsp: true, wantStatus: Good, wantSource: SourceOCSP},
		{name: "ocsp revoked", sources: UseOCSP, ocsp: true, revoke: true, wantStatus: Revoked, wantSource: SourceOCSP},
		{name: "ocsp unknown", sources: UseOCSP, ocsp: true, unknown: true, wantStatus: Unknown, wantSource: SourceOCSP},
		{name: "crl good", sources: UseCRLDistributionPoints, crl: true, wantStatus: Good, wantSource: SourceCRL},
		{name: "crl revoked", sources: UseCRLDistributionPoints, crl: true, revoke: true, wantStatus: Revoked, wantSource: SourceCRL},
		{name: "ocsp before crl", ocsp: true, crl: true, revoke: true, wantStatus: Revoked, wantSource: SourceOCSP},
		{name: "ocsp unknown then crl", ocsp: true, crl: true, unknown: true, wantStatus: Good, wantSource: SourceCRL},
		{name: "no source at all", wantStatus: Unknown, wantSource: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ServiceConfig{}
			if tt.unknown {
				cfg.Known = func(*big.Int) bool { return false }
			}
			w := newWorld(t, cfg)
			leaf := w.leaf(t, tt.ocsp, tt.crl)
			if tt.revoke {
				mustRevoke(t, w.svc.List, leaf, revokedAt, ReasonKeyCompromise)
			}
			res, err := Check(t.Context(), leaf, w.ca.Cert, Options{Sources: tt.sources})
			if tt.wantStatus == Unknown && tt.wantSource == SourceOCSP {
				want := "revocation: ocsp " + w.ocspURL + ": no usable answer: the responder does not know the certificate (status unknown)"
				if !errors.Is(err, ErrUnknownCertificate) || !softFailable(err) || err.Error() != want {
					t.Fatalf("got %v, want %s", err, want)
				}
			} else if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if res.Status != tt.wantStatus || res.Source != tt.wantSource {
				t.Fatalf("got %s from %q, want %s from %q", res.Status, res.Source, tt.wantStatus, tt.wantSource)
			}
			if tt.revoke {
				if !res.RevokedAt.Equal(revokedAt) || res.Reason != ReasonKeyCompromise {
					t.Errorf("revoked at %v for %v, want %v for keyCompromise", res.RevokedAt, res.Reason, revokedAt)
				}
			}
			if tt.wantSource != "" && res.NextUpdate.Before(time.Now()) {
				t.Errorf("nextUpdate %v is in the past", res.NextUpdate)
			}
		})
	}
}

// A change to the list shows in the next answer of both the responder and
// the CRL, and an unrevoke (certificate taken off hold) too.
func TestCheckFollowsListChanges(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	leaf := w.leaf(t, true, true)
	for _, src := range []Sources{UseOCSP, UseCRLDistributionPoints} {
		status := func() Status {
			t.Helper()
			res, err := Check(t.Context(), leaf, w.ca.Cert, Options{Sources: src})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			return res.Status
		}
		if s := status(); s != Good {
			t.Fatalf("sources %d before revocation: %s", src, s)
		}
		mustRevoke(t, w.svc.List, leaf, time.Time{}, ReasonCertificateHold)
		if s := status(); s != Revoked {
			t.Fatalf("sources %d after revocation: %s", src, s)
		}
		if !w.svc.List.Unrevoke(leaf.SerialNumber) {
			t.Fatal("Unrevoke found nothing")
		}
		if s := status(); s != Good {
			t.Fatalf("sources %d after unrevoke: %s", src, s)
		}
	}
}

func TestCheckStapled(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	good := w.leaf(t, false, false)
	revoked := w.leaf(t, false, false)
	mustRevoke(t, w.svc.List, revoked, time.Time{}, ReasonSuperseded)
	staple := func(c *x509.Certificate) []byte {
		der, err := w.svc.Responder.Response(c.SerialNumber)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	for _, tt := range []struct {
		leaf *x509.Certificate
		want Status
	}{{good, Good}, {revoked, Revoked}} {
		res, err := Check(t.Context(), tt.leaf, w.ca.Cert, Options{Stapled: staple(tt.leaf)})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if res.Status != tt.want || res.Source != SourceOCSPStaple {
			t.Errorf("got %s from %q, want %s from ocsp-staple", res.Status, res.Source, tt.want)
		}
	}

	// A staple for another certificate of the same CA is not an answer
	// about this one.
	_, err := Check(t.Context(), good, w.ca.Cert, Options{Stapled: staple(revoked)})
	var ie *InvalidResponseError
	if !errors.As(err, &ie) || ie.Source != SourceOCSPStaple {
		t.Fatalf("staple of another certificate: got %v, want *InvalidResponseError", err)
	}
	if want := "revocation: ocsp-staple: invalid answer: OCSP response rejected: no response matching the supplied certificate"; err.Error() != want {
		t.Errorf("message:\n got %q\nwant %q", err, want)
	}
	if softFailable(err) {
		t.Error("an invalid staple must not be soft-failable")
	}

	// Garbage is rejected with a message naming the problem.
	_, err = Check(t.Context(), good, w.ca.Cert, Options{Stapled: []byte("not DER")})
	if !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), "revocation: ocsp-staple: invalid answer: OCSP response rejected: asn1: structure error") {
		t.Errorf("garbage staple: got %v", err)
	}
}

func TestCheckUnreachable(t *testing.T) {
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	dead := closedURL(t)
	leaf := ca.Leaf(t, testpki.LeafOptions{OCSPServer: []string{dead + "/ocsp"}, CRLDistributionPoints: []string{dead + "/crl"}}).Cert

	res, err := Check(t.Context(), leaf, ca.Cert, Options{})
	if res.Status != Unknown {
		t.Errorf("status %s, want unknown", res.Status)
	}
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("got %v, want *UnreachableError", err)
	}
	if ue.Source != SourceOCSP || ue.URL != dead+"/ocsp" {
		t.Errorf("first unreachable source %s %s, want ocsp %s/ocsp", ue.Source, ue.URL, dead)
	}
	if !softFailable(err) {
		t.Error("unreachable sources must be soft-failable")
	}
	msg := err.Error()
	for _, want := range []string{
		"revocation: ocsp " + dead + "/ocsp: no usable answer: Post \"" + dead + "/ocsp\": dial tcp " + strings.TrimPrefix(dead, "http://") + ": connect: connection refused",
		"revocation: crl " + dead + "/crl: no usable answer: Get \"" + dead + "/crl\": dial tcp " + strings.TrimPrefix(dead, "http://") + ": connect: connection refused",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q\nlacks %q", msg, want)
		}
	}

	// An HTTP error from the responder is unreachable as well.
	w := newWorld(t, ServiceConfig{})
	leaf = w.ca.Leaf(t, testpki.LeafOptions{OCSPServer: []string{w.srv.URL + "/nowhere"}}).Cert
	_, err = Check(t.Context(), leaf, w.ca.Cert, Options{})
	if want := "revocation: ocsp " + w.srv.URL + "/nowhere: no usable answer: HTTP status 404 Not Found"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// Answers signed by anyone but the issuer or its delegated responder are
// errors, never "good".
func TestCheckRejectsForgeries(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	leaf := w.leaf(t, false, false)
	other := testpki.NewRoot(t, testpki.CAOptions{}) // same name as w.ca, another key
	now := time.Now()
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}

	delegate := func(ca *testpki.CA, eku []x509.ExtKeyUsage) *testpki.Leaf {
		return ca.Leaf(t, testpki.LeafOptions{CommonName: "ocsp signer", DNSNames: []string{"ocsp.test"}, ExtKeyUsage: eku})
	}
	goodDelegate := delegate(w.ca, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning})
	noEKU := delegate(w.ca, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	foreign := delegate(other, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning})

	tests := []struct {
		name    string
		respCrt *x509.Certificate
		key     crypto.Signer
		embed   bool
		wantErr string
	}{
		{name: "issuer signs", respCrt: w.ca.Cert, key: w.ca.Key},
		{name: "delegated responder", respCrt: goodDelegate.Cert, key: goodDelegate.Key, embed: true},
		{name: "another key", respCrt: w.ca.Cert, key: other.Key,
			wantErr: `revocation: ocsp-staple: invalid answer: OCSP response rejected: not signed by issuer "CN=passerelle test root,O=passerelle tests" nor by a responder it certified: bad OCSP signature: x509: ECDSA verification failure`},
		{name: "delegate without OCSPSigning", respCrt: noEKU.Cert, key: noEKU.Key, embed: true,
			wantErr: `revocation: ocsp-staple: invalid answer: OCSP response rejected: delegated responder certificate "CN=ocsp signer,O=passerelle tests" lacks the OCSPSigning extended key usage`},
		{name: "delegate of another CA", respCrt: foreign.Cert, key: foreign.Key, embed: true,
			wantErr: `revocation: ocsp-staple: invalid answer: OCSP response rejected: not signed by issuer "CN=passerelle test root,O=passerelle tests" nor by a responder it certified: bad OCSP signature: x509: ECDSA verification failure`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := tmpl
			if tt.embed {
				tm.Certificate = tt.respCrt
			}
			der, err := ocsp.CreateResponse(w.ca.Cert, tt.respCrt, tm, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Check(t.Context(), leaf, w.ca.Cert, Options{Stapled: der})
			if tt.wantErr == "" {
				if err != nil || res.Status != Good {
					t.Fatalf("got %s, %v; want good", res.Status, err)
				}
				return
			}
			var ie *InvalidResponseError
			if !errors.As(err, &ie) {
				t.Fatalf("got %s, %v; want *InvalidResponseError", res.Status, err)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("message:\n got %q\nwant %q", err, tt.wantErr)
			}
			if res.Status != Unknown {
				t.Errorf("status %s with an error, want unknown", res.Status)
			}
		})
	}

	t.Run("crl signed by another key", func(t *testing.T) {
		fake := *w.ca.Cert
		fake.PublicKey = other.Key.Public()
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, &fake, other.Key)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Check(t.Context(), leaf, w.ca.Cert, Options{CRLs: []*x509.RevocationList{crl}})
		want := `revocation: crl-file: invalid answer: CRL of "CN=passerelle test root,O=passerelle tests" rejected: x509: ECDSA verification failure`
		if err == nil || err.Error() != want {
			t.Errorf("got %v\nwant %s", err, want)
		}
	})
}
