package secure

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
)

func TestFetchCache(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/fail" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b))
	}))
	defer srv.Close()
	now := time.Now()
	hc := newFetchClient()
	fc := hc.Transport.(*fetchCache)
	fc.now = func() time.Time { return now }

	get := func(method, path, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b)
	}
	steps := []struct {
		method, path, body, want string
		hits                     int32
	}{
		{"GET", "/crl", "", "200 OK GET ", 1},
		{"GET", "/crl", "", "200 OK GET ", 1},        // cached
		{"POST", "/ocsp", "q1", "200 OK POST q1", 2}, // another request
		{"POST", "/ocsp", "q2", "200 OK POST q2", 3}, // another body
		{"POST", "/ocsp", "q1", "200 OK POST q1", 3}, // cached
		{"GET", "/fail", "", "503 Service Unavailable down\n", 4},
		{"GET", "/fail", "", "503 Service Unavailable down\n", 5}, // failures are not kept
	}
	for i, s := range steps {
		if got := get(s.method, s.path, s.body); got != s.want || hits.Load() != s.hits {
			t.Fatalf("step %d: %q with %d hits, want %q with %d", i, got, hits.Load(), s.want, s.hits)
		}
	}
	now = now.Add(fetchCacheTTL)
	if get("GET", "/crl", ""); hits.Load() != 6 {
		t.Errorf("expired entry served from cache")
	}
}

// TestServerRevocationCached: a listener judging client certificates with a
// CRL distribution point downloads the CRL once, not per handshake.
func TestServerRevocationCached(t *testing.T) {
	w := newWorld(t)
	var downloads atomic.Int32
	crlSrv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		downloads.Add(1)
		w.rev.ServeHTTP(rw, r)
	}))
	defer crlSrv.Close()
	_, crlURL := w.rev.URLs(crlSrv.URL)
	client := w.root.Leaf(t, testpki.LeafOptions{Client: true, Emails: []string{"a@example.org"}, CRLDistributionPoints: []string{crlURL}})
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
