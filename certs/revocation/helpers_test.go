package revocation

import (
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// world is a CA with a revocation service served over loopback HTTP.
type world struct {
	ca      *testpki.CA
	svc     *Service
	srv     *httptest.Server
	ocspURL string
	crlURL  string
}

func newWorld(t *testing.T, cfg ServiceConfig) *world {
	t.Helper()
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	if cfg.Issuer == nil {
		cfg.Issuer, cfg.Signer = ca.Cert, ca.Key
	}
	svc, err := NewService(cfg)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	w := &world{ca: ca, svc: svc, srv: srv}
	w.ocspURL, w.crlURL = svc.URLs(srv.URL)
	return w
}

// leaf issues a certificate pointing at the service for OCSP, CRL or both.
func (w *world) leaf(t *testing.T, ocsp, crl bool) *x509.Certificate {
	t.Helper()
	opts := testpki.LeafOptions{}
	if ocsp {
		opts.OCSPServer = []string{w.ocspURL}
	}
	if crl {
		opts.CRLDistributionPoints = []string{w.crlURL}
	}
	return w.ca.Leaf(t, opts).Cert
}

// closedURL returns an http URL on a loopback port nobody listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	return "http://" + testutil.ClosedAddr(t).String()
}

func mustRevoke(t *testing.T, l *List, c *x509.Certificate, at time.Time, r Reason) {
	t.Helper()
	if err := l.Revoke(c.SerialNumber, at, r); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
}

// softFailable reports whether err only says that revocation information
// was unavailable (every error in it is an *UnreachableError): what a
// soft-fail caller may ignore.
func softFailable(err error) bool {
	if err == nil {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !softFailable(e) {
				return false
			}
		}
		return len(j.Unwrap()) > 0
	}
	var ue *UnreachableError
	return errors.As(err, &ue)
}
