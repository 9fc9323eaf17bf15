package revocation

import (
	"crypto"
	"net/url"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"golang.org/x/crypto/ocsp"
)

// Whatever bytes arrive, the responder answers with an OCSP response (an
// error status for anything it cannot use) and never panics.
func FuzzRespond(f *testing.F) {
	ca := testpki.NewRoot(f, testpki.CAOptions{})
	leaf := ca.Leaf(f, testpki.LeafOptions{}).Cert
	r, err := NewResponder(ResponderConfig{Issuer: ca.Cert, Signer: ca.Key, List: NewList()})
	if err != nil {
		f.Fatal(err)
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		der, err := ocsp.CreateRequest(leaf, ca.Cert, &ocsp.RequestOptions{Hash: h})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, req []byte) {
		resp, err := r.Respond(req)
		if len(resp) == 0 {
			t.Fatalf("no response body (err %v)", err)
		}
		if _, perr := ocsp.ParseResponse(resp, ca.Cert); err == nil && perr != nil {
			t.Fatalf("success without a parseable response: %v", perr)
		}
	})
}

// GET paths of any shape are either a request or a clean error.
func FuzzRequestFromPath(f *testing.F) {
	f.Add("/ocsp/MEMwQTA%2FMD0wOzAJBgUrDgMCGgUABBQ")
	f.Add("//////")
	f.Add("/%zz/abc")
	f.Fuzz(func(t *testing.T, p string) {
		u := &url.URL{Path: p}
		der, err := requestFromPath(u)
		if err == nil {
			if _, perr := ocsp.ParseRequest(der); perr != nil {
				t.Fatalf("accepted an unparseable request: %v", perr)
			}
		}
	})
}

// No byte string that was not signed by the issuer is taken for an answer.
func FuzzVerifyOCSP(f *testing.F) {
	ca := testpki.NewRoot(f, testpki.CAOptions{})
	leaf := ca.Leaf(f, testpki.LeafOptions{}).Cert
	r, err := NewResponder(ResponderConfig{Issuer: ca.Cert, Signer: ca.Key, List: NewList()})
	if err != nil {
		f.Fatal(err)
	}
	good, err := r.Response(leaf.SerialNumber)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(ocsp.TryLaterErrorResponse)
	f.Fuzz(func(t *testing.T, der []byte) {
		v, err := verifyOCSP(der, leaf, ca.Cert, time.Now(), DefaultSkew)
		if err != nil {
			return
		}
		// Accepted: it must carry the CA's valid signature (the fuzzer
		// cannot make a delegated responder certificate the CA signed).
		resp, perr := ocsp.ParseResponseForCert(der, leaf, ca.Cert)
		if perr != nil || resp.CheckSignatureFrom(ca.Cert) != nil {
			t.Fatalf("accepted %s without the issuer's signature", v.res.Status)
		}
	})
}

func FuzzParseCRLs(f *testing.F) {
	ca := testpki.NewRoot(f, testpki.CAOptions{})
	p, err := NewCRLPublisher(CRLConfig{Issuer: ca.Cert, Signer: ca.Key, List: NewList()})
	if err != nil {
		f.Fatal(err)
	}
	der, _ := p.CRL()
	f.Add(der)
	f.Add([]byte("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		crls, err := ParseCRLs(data)
		if err == nil && len(crls) == 0 {
			t.Fatal("no error and no CRL")
		}
	})
}
