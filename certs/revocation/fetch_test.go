package revocation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"golang.org/x/crypto/ocsp"
)

func TestStaple(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	good := w.leaf(t, true, false)
	revoked := w.leaf(t, true, false)
	mustRevoke(t, w.svc.List, revoked, time.Time{}, ReasonSuperseded)
	for _, tt := range []struct {
		leaf *x509.Certificate
		want int
	}{{good, ocsp.Good}, {revoked, ocsp.Revoked}} {
		der, err := Staple(t.Context(), tt.leaf, w.ca.Cert, nil)
		if err != nil {
			t.Fatalf("Staple: %v", err)
		}
		r, err := ocsp.ParseResponseForCert(der, tt.leaf, w.ca.Cert)
		if err != nil || r.Status != tt.want {
			t.Fatalf("stapled response: %v %v", r, err)
		}
	}

	t.Run("no responder", func(t *testing.T) {
		_, err := Staple(t.Context(), w.leaf(t, false, true), w.ca.Cert, nil)
		if !errors.Is(err, ErrNoOCSPServer) || err.Error() != `revocation: staple "CN=localhost,O=passerelle tests": the certificate names no OCSP responder` {
			t.Errorf("got %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		dead := closedURL(t)
		leaf := w.ca.Leaf(t, testpki.LeafOptions{OCSPServer: []string{"ldap://old.example/ocsp", dead}}).Cert
		_, err := Staple(t.Context(), leaf, w.ca.Cert, nil)
		var ue *UnreachableError
		if !errors.As(err, &ue) || ue.URL != dead || ue.Source != SourceOCSP {
			t.Fatalf("got %v, want *UnreachableError for %s", err, dead)
		}
		if !strings.HasSuffix(err.Error(), "connect: connection refused") {
			t.Errorf("message %q", err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		w := newWorld(t, ServiceConfig{Known: func(*big.Int) bool { return false }})
		_, err := Staple(t.Context(), w.leaf(t, true, false), w.ca.Cert, nil)
		want := "revocation: ocsp " + w.ocspURL + ": invalid answer: the responder does not know the certificate (status unknown)"
		if err == nil || err.Error() != want {
			t.Errorf("got %v\nwant %s", err, want)
		}
	})
}

// The full path a stapling server and a checking client take: the server
// fetches its staple, sends it in a real TLS handshake on loopback, and the
// client checks what it received.
func TestStapleOverTLS(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	for _, revoke := range []bool{false, true} {
		leaf := w.ca.Leaf(t, testpki.LeafOptions{OCSPServer: []string{w.ocspURL}})
		if revoke {
			mustRevoke(t, w.svc.List, leaf.Cert, time.Time{}, ReasonKeyCompromise)
		}
		cert := leaf.TLS()
		staple, err := Staple(t.Context(), leaf.Cert, w.ca.Cert, nil)
		if err != nil {
			t.Fatal(err)
		}
		cert.OCSPStaple = staple

		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				err = c.(*tls.Conn).HandshakeContext(t.Context())
				c.Close()
			}
			done <- err
		}()
		d := tls.Dialer{Config: &tls.Config{RootCAs: w.ca.Pool(), ServerName: "localhost"}}
		c, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		cs := c.(*tls.Conn).ConnectionState()
		c.Close()
		if err := <-done; err != nil {
			t.Fatalf("server handshake: %v", err)
		}
		ln.Close()
		res, err := Check(t.Context(), cs.PeerCertificates[0], w.ca.Cert, Options{Stapled: cs.OCSPResponse, Sources: UseOffline})
		want := Good
		if revoke {
			want = Revoked
		}
		if err != nil || res.Status != want || res.Source != SourceOCSPStaple {
			t.Errorf("revoke=%v: got %+v, %v", revoke, res, err)
		}
	}
}

// A cancelled check returns the cancellation, not a soft-failable error.
func TestCheckCancelled(t *testing.T) {
	// A server that accepts and never answers, so only the cancellation
	// can end the request.
	ln := testutil.Listen(t)
	defer ln.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })}
	go srv.Serve(ln)
	defer srv.Close()
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := ca.Leaf(t, testpki.LeafOptions{OCSPServer: []string{"http://" + ln.Addr().String()}}).Cert

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := Check(ctx, leaf, ca.Cert, Options{})
		errc <- err
	}()
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || softFailable(err) || err.Error() != "revocation: context canceled" {
		t.Errorf("got %v", err)
	}

	// A timeout, on the other hand, is an unreachable responder.
	_, err = Check(t.Context(), leaf, ca.Cert, Options{HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}})
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "Client.Timeout exceeded") {
		t.Errorf("timeout: got %v", err)
	}
}

func TestRefreshTime(t *testing.T) {
	now := time.Date(2030, 5, 6, 7, 0, 0, 0, time.UTC)
	ca := testpki.NewRoot(t, testpki.CAOptions{NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0)})
	r, err := NewResponder(ResponderConfig{Issuer: ca.Cert, Signer: ca.Key, List: NewList(), Validity: 4 * time.Hour, Backdate: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	der, err := r.Response(big.NewInt(1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := RefreshTime(der)
	if want := now.Add(-time.Minute + 2*time.Hour); err != nil || !got.Equal(want) {
		t.Errorf("RefreshTime = %v, %v; want %v", got, err, want)
	}
	if _, err := RefreshTime([]byte{0x30, 0x03, 0x0a, 0x01, 0x03}); err == nil || err.Error() != "revocation: parse staple: ocsp: error from server: try later" {
		t.Errorf("tryLater staple: %v", err)
	}
}

func TestCheckWrongIssuer(t *testing.T) {
	a := testpki.NewRoot(t, testpki.CAOptions{CommonName: "root a"})
	b := testpki.NewRoot(t, testpki.CAOptions{CommonName: "root b"})
	leaf := a.Leaf(t, testpki.LeafOptions{}).Cert
	_, err := Check(t.Context(), leaf, b.Cert, Options{})
	want := `revocation: check: "CN=root b,O=passerelle tests" is not the issuer of "CN=localhost,O=passerelle tests" (issued by "CN=root a,O=passerelle tests")`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
