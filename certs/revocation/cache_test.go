package revocation

import (
	"crypto/x509"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
)

func TestCacheSavesRequests(t *testing.T) {
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	svc, err := NewService(ServiceConfig{Issuer: ca.Cert, Signer: ca.Key})
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		svc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ocspURL, crlURL := svc.URLs(srv.URL)
	leafOCSP := ca.Leaf(t, testpki.LeafOptions{OCSPServer: []string{ocspURL}}).Cert
	leafCRL := ca.Leaf(t, testpki.LeafOptions{CRLDistributionPoints: []string{crlURL}}).Cert
	cache := NewCache(CacheConfig{MaxAge: 10 * time.Minute})
	now := time.Now()

	run := func(at time.Time, wantHits int64) {
		t.Helper()
		for _, leaf := range []*x509.Certificate{leafOCSP, leafCRL} {
			res, err := Check(t.Context(), leaf, ca.Cert, Options{Cache: cache, Now: at})
			if err != nil || res.Status != Good {
				t.Fatalf("Check: %+v, %v", res, err)
			}
		}
		if got := hits.Load(); got != wantHits {
			t.Fatalf("%d requests to the service, want %d", got, wantHits)
		}
	}
	run(now, 2)                     // one OCSP request, one CRL download
	run(now.Add(time.Minute), 2)    // both answered from the cache
	run(now.Add(11*time.Minute), 4) // past MaxAge: asked again
	cache.Forget()                  // a fresh start
	run(now.Add(12*time.Minute), 6)
	if n := cache.Len(); n != 2 {
		t.Errorf("cache holds %d answers, want 2", n)
	}
}

func TestCacheBounded(t *testing.T) {
	c := NewCache(CacheConfig{MaxEntries: 3})
	now := time.Now()
	for i := range 5 {
		// Later keys expire sooner; the soonest are evicted first.
		c.put(big.NewInt(int64(i)).String(), i, now, now.Add(time.Duration(50-i)*time.Minute))
	}
	if c.Len() != 3 {
		t.Fatalf("%d entries, want 3", c.Len())
	}
	for _, k := range []string{"0", "1", "2"} {
		if _, ok := c.get(k, now); !ok {
			t.Errorf("entry %s evicted", k)
		}
	}
	if _, ok := c.get("0", now.Add(time.Hour)); ok {
		t.Error("expired entry returned")
	}
	// An answer already past its nextUpdate is not kept.
	c.put("stale", 1, now, now.Add(-time.Second))
	if _, ok := c.get("stale", now); ok {
		t.Error("stale answer kept")
	}
}
