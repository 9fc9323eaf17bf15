package web

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// testServer is handler behind an http.Server with this package's limits,
// on loopback, over TLS (with a certificate for 127.0.0.1 and localhost
// from a root made for the test) or plain.
type testServer struct {
	addr string
	ca   *testpki.CA // nil when plain
}

func (s *testServer) url(path string) string {
	scheme := "https://"
	if s.ca == nil {
		scheme = "http://"
	}
	return scheme + s.addr + path
}

// serve starts handler over TLS.
func serve(t *testing.T, handler http.Handler) *testServer {
	t.Helper()
	ca := testpki.NewRoot(t, testpki.CAOptions{CommonName: "web test root"})
	leaf := ca.Leaf(t, testpki.LeafOptions{})
	ln := tls.NewListener(testutil.Listen(t), &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS()},
		NextProtos:   []string{"http/1.1"},
	})
	startServer(t, ln, handler)
	return &testServer{addr: ln.Addr().String(), ca: ca}
}

// servePlain starts handler over plain TCP.
func servePlain(t *testing.T, handler http.Handler) *testServer {
	t.Helper()
	ln := testutil.Listen(t)
	startServer(t, ln, handler)
	return &testServer{addr: ln.Addr().String()}
}

func startServer(t *testing.T, ln net.Listener, handler http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: handler, ErrorLog: log.New(io.Discard, "", 0)}
	ApplyLimits(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
}

// client is an HTTP client trusting the server's root only.
func (s *testServer) client() *http.Client {
	tr := &http.Transport{}
	if s.ca != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.ca.Pool()}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// raw sends request exactly as written (so paths are not cleaned or
// re-encoded by a client) and returns the response and its body.
func (s *testServer) raw(t *testing.T, request string) (*http.Response, string) {
	t.Helper()
	var conn net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if s.ca != nil {
		pool := x509.NewCertPool()
		pool.AddCert(s.ca.Cert)
		conn, err = tls.DialWithDialer(d, "tcp", s.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	} else {
		conn, err = d.Dial("tcp", s.addr)
	}
	if err != nil {
		t.Fatalf("connect to %s: %v", s.addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("send request: %v", err)
	}
	method := "GET"
	if len(request) >= 4 && request[:4] == "HEAD" {
		method = "HEAD"
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response to %q: %v", request, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(body)
}
