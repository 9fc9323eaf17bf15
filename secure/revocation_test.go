package secure

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
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
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.rev.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
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
