package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// countingWorld is a world whose service counts the requests it answers.
func countingWorld(t *testing.T, cfg ServiceConfig) (*world, *atomic.Int64) {
	t.Helper()
	w := newWorld(t, cfg)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.svc.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.ocspURL, w.crlURL = w.svc.URLs(srv.URL)
	return w, &hits
}

// TestCacheExpiry checks, against a real responder and CRL publisher, when
// the cache asks again: after the CRL's HTTP max-age (the publisher sends
// max-age=60), at the OCSP answer's nextUpdate, and after MaxAge.
func TestCacheExpiry(t *testing.T) {
	start := time.Now()
	var clock atomic.Int64 // offset from start, read by the service too
	now := func() time.Time { return start.Add(time.Duration(clock.Load())) }
	// Answers signed with thisUpdate a minute back and nextUpdate 3 minutes
	// after that: 2 minutes ahead.
	w, hits := countingWorld(t, ServiceConfig{OCSPValidity: 3 * time.Minute, Now: now})
	leafOCSP := w.leaf(t, true, false)
	leafCRL := w.leaf(t, false, true)
	type step struct {
		name            string
		at              time.Duration
		ocspHit, crlHit bool
	}
	tests := []struct {
		name   string
		maxAge time.Duration
		steps  []step
	}{
		{"nextUpdate and max-age", time.Hour, []step{
			{"first check", 0, false, false},
			{"both kept", 30 * time.Second, true, true},
			{"CRL past its max-age", 90 * time.Second, true, false},
			{"OCSP answer past its nextUpdate", 130 * time.Second, false, true},
		}},
		{"MaxAge", 20 * time.Second, []step{
			{"first check", 200 * time.Second, false, false},
			{"both kept", 210 * time.Second, true, true},
			{"both past MaxAge", 221 * time.Second, false, false},
		}},
	}
	want := hits.Load()
	for _, tt := range tests {
		cache := NewCache(CacheConfig{MaxAge: tt.maxAge})
		for _, s := range tt.steps {
			clock.Store(int64(s.at))
			for _, leaf := range []struct {
				cert *x509.Certificate
				hit  bool
			}{{leafOCSP, s.ocspHit}, {leafCRL, s.crlHit}} {
				res, err := Check(t.Context(), leaf.cert, w.ca.Cert, Options{Cache: cache, Now: now()})
				if err != nil || res.Status != Good {
					t.Fatalf("%s, %s: Check: %+v, %v", tt.name, s.name, res, err)
				}
				if !leaf.hit {
					want++
				}
			}
			if got := hits.Load(); got != want {
				t.Fatalf("%s, %s: %d requests in all, want %d", tt.name, s.name, got, want)
			}
		}
	}
}

// TestCacheSharesFetches: checks of one certificate that run at once make
// one request to the responder; a check whose fetch is abandoned (its
// context ended) does not fail the others.
func TestCacheSharesFetches(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	var hits atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.svc.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	ocspURL, _ := w.svc.URLs(srv.URL)
	leaf := w.ca.Leaf(t, testpki.LeafOptions{OCSPServer: []string{ocspURL}}).Cert
	cache := NewCache(CacheConfig{})

	// The first check's context ends while its request waits: a second
	// check waiting for the same answer fetches it itself.
	first, cancelFirst := context.WithCancel(t.Context())
	firstErr := make(chan error, 1)
	go func() {
		_, err := Check(first, leaf, w.ca.Cert, Options{Cache: cache})
		firstErr <- err
	}()
	testutil.Eventually(t, "the first request", 5*time.Second, func() bool { return hits.Load() == 1 })

	const n = 20
	var wg sync.WaitGroup
	results := make([]string, n)
	for i := range n {
		wg.Go(func() {
			res, err := Check(t.Context(), leaf, w.ca.Cert, Options{Cache: cache})
			results[i] = fmt.Sprintf("%s %v", res.Status, err)
		})
	}
	testutil.Eventually(t, "every check waiting for the first fetch", 5*time.Second, func() bool { return cache.waiting() == n })
	cancelFirst()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Errorf("the abandoned check returned %v", err)
	}
	testutil.Eventually(t, "one waiter fetching in its turn", 5*time.Second, func() bool { return hits.Load() == 2 })
	close(release)
	wg.Wait()
	for i, r := range results {
		if r != "good <nil>" {
			t.Errorf("check %d: %s", i, r)
		}
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("%d requests for %d checks, want 2", got, n+1)
	}
}

// waiting counts the checks waiting for a fetch in flight.
func (c *Cache) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, f := range c.flights {
		n += f.waiters
	}
	return n
}

// TestCacheBounded: past MaxEntries or MaxBytes, the answers that expire
// soonest go first; an answer already expired is not kept.
func TestCacheBounded(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		cfg  CacheConfig
		size int64
		kept []string
	}{
		{"entries", CacheConfig{MaxEntries: 3}, 1, []string{"0", "1", "2"}},
		{"bytes", CacheConfig{MaxBytes: 250}, 100, []string{"0", "1"}},
		{"one answer over MaxBytes", CacheConfig{MaxBytes: 50}, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCache(tt.cfg)
			for i := range 5 {
				// Later keys expire sooner.
				key := fmt.Sprint(i)
				c.get(t.Context(), key, now, func() (fetched, error) {
					return fetched{value: i, size: tt.size, keep: now.Add(time.Duration(50-i) * time.Minute)}, nil
				})
			}
			var kept []string
			for i := range 5 {
				if _, ok := c.entries[fmt.Sprint(i)]; ok {
					kept = append(kept, fmt.Sprint(i))
				}
			}
			if fmt.Sprint(kept) != fmt.Sprint(tt.kept) {
				t.Errorf("kept %v, want %v", kept, tt.kept)
			}
			if want := tt.size * int64(len(tt.kept)); c.bytes != want {
				t.Errorf("%d bytes counted, want %d", c.bytes, want)
			}
		})
	}
	c := NewCache(CacheConfig{})
	c.get(t.Context(), "stale", now, func() (fetched, error) { return fetched{value: 1, keep: now.Add(-time.Second)}, nil })
	if len(c.entries) != 0 {
		t.Error("an answer past its nextUpdate was kept")
	}
}

func TestKeepUntil(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	next := now.Add(time.Hour)
	tests := []struct {
		cacheControl string
		nextUpdate   time.Time
		want         time.Duration
	}{
		{"", next, time.Hour},
		{"max-age=60, must-revalidate", next, time.Minute},
		{"public, MAX-AGE=\"120\"", next, 2 * time.Minute},
		{"max-age=7200", next, time.Hour},
		{"max-age=-1", next, time.Hour},
		{"max-age=soon", next, time.Hour},
		{"no-store", next, time.Hour},
		{"", time.Time{}, 24 * time.Hour},
		{"max-age=99999999999999", time.Time{}, 24 * time.Hour},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.cacheControl != "" {
			h.Set("Cache-Control", tt.cacheControl)
		}
		if got := keepUntil(now, tt.nextUpdate, h).Sub(now); got != tt.want {
			t.Errorf("Cache-Control %q, nextUpdate %v: kept %v, want %v", tt.cacheControl, tt.nextUpdate, got, tt.want)
		}
	}
}

// TestCRLSizeLimit: a distribution point that answers more than
// DefaultMaxCRLSize bytes is refused, whether it says so in Content-Length
// or streams the bytes.
func TestCRLSizeLimit(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/declared" {
			rw.Header().Set("Content-Length", fmt.Sprint(DefaultMaxCRLSize+1))
			rw.WriteHeader(http.StatusOK)
			return
		}
		rw.(http.Flusher).Flush() // chunked: no Content-Length
		io.Copy(rw, io.LimitReader(zeros{}, DefaultMaxCRLSize+1))
	}))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/declared", "/streamed"} {
		t.Run(path, func(t *testing.T) {
			leaf := w.ca.Leaf(t, testpki.LeafOptions{CRLDistributionPoints: []string{srv.URL + path}}).Cert
			_, err := Check(t.Context(), leaf, w.ca.Cert, Options{})
			want := "revocation: crl " + srv.URL + path + ": invalid answer: answer larger than 10485760 bytes"
			var ie *InvalidResponseError
			if !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got %v, want an *InvalidResponseError %q", err, want)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestCacheWaiterDeadline: a check whose deadline passes while it waits for
// another check's fetch ends as its own fetch would: the source did not
// answer in time, which soft-fail ignores.
func TestCacheWaiterDeadline(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.svc.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	defer close(release)
	leaf := w.ca.Leaf(t, testpki.LeafOptions{OCSPServer: []string{srv.URL + "/ocsp"}}).Cert
	cache := NewCache(CacheConfig{})
	go Check(t.Context(), leaf, w.ca.Cert, Options{Cache: cache})
	testutil.Eventually(t, "the first request", 5*time.Second, func() bool { return hits.Load() == 1 })

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	res, err := Check(ctx, leaf, w.ca.Cert, Options{Cache: cache})
	var ue *UnreachableError
	want := "revocation: ocsp " + srv.URL + "/ocsp: no usable answer: context deadline exceeded"
	if res.Status != Unknown || !errors.As(err, &ue) || !softFailable(err) || err.Error() != want {
		t.Errorf("got %s, %v; want unknown, %q", res.Status, err, want)
	}
}
