package secure

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/passerelle/passerelle/internal/testpki"
)

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
