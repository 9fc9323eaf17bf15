package secure

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs/revocation"
	"github.com/passerelle/passerelle/internal/testpki"
)

// TestClassifyRevocationCache judges client certificates the way a Server
// does, three times each: with a Server's cache the OCSP responder and the
// CRL distribution point are asked once, and a revocation shows once the
// cached answer is a minute old; without a cache every judgement asks.
func TestClassifyRevocationCache(t *testing.T) {
	w := newWorld(t)
	srv, requests := countingRevocation(t, w)
	tests := []struct {
		name  string
		leaf  testpki.LeafOptions
		cache *revocation.Cache
		want  int32
	}{
		{"OCSP, cached", testpki.LeafOptions{OCSPServer: []string{srv.URL + "/ocsp"}}, newRevocationCache(), 1},
		{"CRL, cached", testpki.LeafOptions{CRLDistributionPoints: []string{srv.URL + "/crl"}}, newRevocationCache(), 1},
		{"CRL, no cache", testpki.LeafOptions{CRLDistributionPoints: []string{srv.URL + "/crl"}}, nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.leaf.Client, tt.leaf.Emails = true, []string{"a@example.org"}
			leaf := w.root.Leaf(t, tt.leaf)
			now := time.Now()
			judge := func(at time.Time) Verdict {
				return Classify(t.Context(), append([]*x509.Certificate{leaf.Cert}, leaf.Chain...), VerifyOptions{Roots: w.root.Pool(), Role: RoleClient, Now: at, RevocationCache: tt.cache})
			}
			requests.Store(0)
			for i := range 3 {
				if v := judge(now); v.Status != StatusTrusted {
					t.Fatalf("judgement %d: %s %q", i, v.Status, v.Reason)
				}
			}
			if got := requests.Load(); got != tt.want {
				t.Errorf("%d requests for 3 judgements, want %d", got, tt.want)
			}
			if tt.cache == nil {
				return
			}
			w.revoke(t, leaf)
			t.Cleanup(func() { w.rev.List.Unrevoke(leaf.Cert.SerialNumber) })
			if v := judge(now.Add(30 * time.Second)); v.Status != StatusTrusted {
				t.Errorf("30 seconds after the revocation: %s %q, want the cached answer", v.Status, v.Reason)
			}
			if v := judge(now.Add(61 * time.Second)); v.Status != StatusRevoked {
				t.Errorf("61 seconds after the revocation: %s %q, want revoked", v.Status, v.Reason)
			}
		})
	}
}

// TestServerRevocationCached: a listener judging client certificates with a
// CRL distribution point downloads the CRL once, not per handshake.
func TestServerRevocationCached(t *testing.T) {
	w := newWorld(t)
	crlSrv, downloads := countingRevocation(t, w)
	client := w.root.Leaf(t, testpki.LeafOptions{Client: true, Emails: []string{"a@example.org"}, CRLDistributionPoints: []string{crlSrv.URL + "/crl"}})
	ts := startServer(t, ServerConfig{
		GetCertificate: staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS()),
		ClientAuth:     ClientAuthRequest,
		ClientCAs:      w.root.Pool(),
	}, verdictHandler)
	for i := 0; i < 3; i++ {
		c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: w.root.Pool(), Certificates: []tls.Certificate{client.TLS()}})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(got), "status trusted\n") {
			t.Fatalf("connection %d: %q", i, got)
		}
	}
	if n := downloads.Load(); n != 1 {
		t.Errorf("CRL downloaded %d times for 3 handshakes, want 1", n)
	}
}

// countingRevocation serves the world's OCSP responder and CRLs over HTTP on
// loopback and counts the requests.
func countingRevocation(t testing.TB, w *world) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.rev.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}
