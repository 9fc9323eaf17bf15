package revocation

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"golang.org/x/crypto/ocsp"
)

// benchCA is a CA with a responder and a list of n revoked serials.
func benchCA(b *testing.B, n int) (*testpki.CA, *Service) {
	b.Helper()
	ca := testpki.NewRoot(b, testpki.CAOptions{})
	svc, err := NewService(ServiceConfig{Issuer: ca.Cert, Signer: ca.Key})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Now().Add(-time.Hour)
	for i := range n {
		if err := svc.List.Revoke(new(big.Int).Lsh(big.NewInt(int64(i+1)), 64), at, ReasonKeyCompromise); err != nil {
			b.Fatal(err)
		}
	}
	return ca, svc
}

// An OCSP POST answered from the responder's cache of signed answers.
func BenchmarkResponderCached(b *testing.B) {
	ca, svc := benchCA(b, 1000)
	leaf := ca.Leaf(b, testpki.LeafOptions{}).Cert
	body := ocspRequestB(b, leaf, ca.Cert)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, OCSPPath, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("HTTP %d", rec.Code)
		}
	}
}

// An answer signed anew (ECDSA P-256), as after every change of the list.
func BenchmarkResponderSign(b *testing.B) {
	_, svc := benchCA(b, 1000)
	serial := big.NewInt(1)
	b.ReportAllocs()
	for b.Loop() {
		serial.Add(serial, big.NewInt(1))
		if _, err := svc.Responder.Response(serial); err != nil {
			b.Fatal(err)
		}
	}
}

// Re-signing a CRL of 10,000 entries after a change to the list.
func BenchmarkCRLSign10k(b *testing.B) {
	_, svc := benchCA(b, 10000)
	extra := big.NewInt(7)
	b.ReportAllocs()
	for b.Loop() {
		if err := svc.List.Revoke(extra, time.Time{}, ReasonSuperseded); err != nil {
			b.Fatal(err)
		}
		if _, err := svc.CRL.CRL(); err != nil {
			b.Fatal(err)
		}
	}
}

// Check against a CRL file of 10,000 entries: signature plus lookup.
func BenchmarkCheckCRLFile10k(b *testing.B) {
	ca, svc := benchCA(b, 10000)
	leaf := ca.Leaf(b, testpki.LeafOptions{}).Cert
	der, err := svc.CRL.CRL()
	if err != nil {
		b.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{CRLs: []*x509.RevocationList{crl}, Sources: UseCRLFiles}
	b.ReportAllocs()
	for b.Loop() {
		if res, err := Check(b.Context(), leaf, ca.Cert, opts); err != nil || res.Status != Good {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

// A full OCSP round trip over loopback HTTP: request, responder, verify.
func BenchmarkCheckOCSPLoopback(b *testing.B) {
	ca, svc := benchCA(b, 1000)
	srv := httptest.NewServer(svc)
	b.Cleanup(srv.Close)
	ocspURL, _ := svc.URLs(srv.URL)
	leaf := ca.Leaf(b, testpki.LeafOptions{OCSPServer: []string{ocspURL}}).Cert
	client := srv.Client()
	b.ReportAllocs()
	for b.Loop() {
		if res, err := Check(b.Context(), leaf, ca.Cert, Options{HTTPClient: client}); err != nil || res.Status != Good {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

func ocspRequestB(b *testing.B, leaf, issuer *x509.Certificate) []byte {
	b.Helper()
	der, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		b.Fatal(err)
	}
	return der
}
