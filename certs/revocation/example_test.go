package revocation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/passerelle/passerelle/certs/revocation"
)

// A CA serves OCSP and a CRL, revokes a certificate, and a client checks it.
func Example() {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(der)

	// One list, answered by an OCSP responder and a CRL, over HTTP.
	list := revocation.NewList()
	responder, err := revocation.NewResponder(revocation.ResponderConfig{Issuer: ca, Signer: caKey, List: list})
	if err != nil {
		fmt.Println(err)
		return
	}
	crl, err := revocation.NewCRLPublisher(revocation.CRLConfig{Issuer: ca, Signer: caKey, List: list})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("POST /ocsp", responder)
	mux.Handle("GET /ca.crl", crl)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ocspURL, crlURL := srv.URL+"/ocsp", srv.URL+"/ca.crl"

	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ = x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1234), Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		OCSPServer: []string{ocspURL}, CRLDistributionPoints: []string{crlURL},
	}, ca, leafKey.Public(), caKey)
	leaf, _ := x509.ParseCertificate(der)

	// A cache shared by the checks keeps the answers until their
	// nextUpdate, for an hour at most.
	cache := revocation.NewCache(revocation.CacheConfig{})
	res, err := revocation.Check(context.Background(), leaf, ca, revocation.Options{Cache: cache})
	fmt.Println(res.Status, res.Source, err)

	_ = list.Revoke(leaf.SerialNumber, time.Now(), revocation.ReasonKeyCompromise)
	res, err = revocation.Check(context.Background(), leaf, ca, revocation.Options{Sources: revocation.UseCRLDistributionPoints})
	fmt.Println(res.Status, res.Source, res.Reason, err)
	// Output:
	// good ocsp <nil>
	// revoked crl keyCompromise <nil>
}
