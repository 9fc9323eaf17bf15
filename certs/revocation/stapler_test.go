package revocation

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"golang.org/x/crypto/ocsp"
)

func stapleStatus(t *testing.T, s *Stapler, w *world, leaf *testpki.Leaf) int {
	t.Helper()
	der := s.Staple()
	if der == nil {
		return -1
	}
	r, err := ocsp.ParseResponseForCert(der, leaf.Cert, w.ca.Cert)
	if err != nil {
		t.Fatalf("staple: %v", err)
	}
	return r.Status
}

// The stapler follows the list: a revocation shows in the staple at the next
// refresh, and a responder outage keeps the last good staple.
func TestStaplerRun(t *testing.T) {
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	// Answers valid two minutes and backdated one: their refresh time
	// (halfway) is the moment they are signed, so the stapler refreshes
	// every MinInterval.
	svc, err := NewService(ServiceConfig{Issuer: ca.Cert, Signer: ca.Key, OCSPValidity: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if down.Load() {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		svc.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	w := &world{ca: ca, svc: svc, srv: srv}
	w.ocspURL, w.crlURL = svc.URLs(srv.URL)
	leaf := ca.Leaf(t, testpki.LeafOptions{OCSPServer: []string{w.ocspURL}})

	s, err := NewStapler(StaplerConfig{Leaf: leaf.Cert, Issuer: ca.Cert, MinInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s.Staple() != nil {
		t.Fatal("a staple before Run")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testutil.Eventually(t, "a good staple", 5*time.Second, func() bool { return stapleStatus(t, s, w, leaf) == ocsp.Good })
	// The responder caches its answer for half of 2 minutes, so the
	// revocation must also reach it: the list change clears that cache.
	mustRevoke(t, svc.List, leaf.Cert, time.Time{}, ReasonKeyCompromise)
	testutil.Eventually(t, "a revoked staple", 5*time.Second, func() bool { return stapleStatus(t, s, w, leaf) == ocsp.Revoked })

	down.Store(true)
	n := fetches.Load()
	testutil.Eventually(t, "retries while the responder is down", 5*time.Second, func() bool { return fetches.Load() >= n+3 })
	if stapleStatus(t, s, w, leaf) != ocsp.Revoked {
		t.Error("the last staple was dropped during an outage")
	}
	c := s.Certificate(&tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}})
	if len(c.OCSPStaple) == 0 || len(c.Certificate) != 1 {
		t.Error("Certificate did not carry the staple")
	}
	// A server that swapped certificates must not staple this answer to
	// the new one.
	other := &tls.Certificate{Certificate: [][]byte{ca.Leaf(t, testpki.LeafOptions{}).Cert.Raw}}
	if c := s.Certificate(other); c != other || c.OCSPStaple != nil {
		t.Error("Certificate stapled the answer to another certificate")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after cancellation", err)
	}
}

func TestNewStaplerErrors(t *testing.T) {
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := ca.Leaf(t, testpki.LeafOptions{})
	_, err := NewStapler(StaplerConfig{Leaf: leaf.Cert, Issuer: ca.Cert})
	if !errors.Is(err, ErrNoOCSPServer) || err.Error() != `revocation: stapler "CN=localhost,O=passerelle tests": the certificate names no OCSP responder` {
		t.Errorf("got %v", err)
	}
	if _, err := NewStapler(StaplerConfig{Leaf: leaf.Cert}); err == nil || err.Error() != "revocation: stapler: need both the certificate and its issuer" {
		t.Errorf("got %v", err)
	}
}
