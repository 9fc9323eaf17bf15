package secure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs/revocation"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

func staticCert(c tls.Certificate) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c, nil }
}

// echoHandler answers each chunk with "Echo -- " and the chunk, as the
// ServerSocket example of seed 001 does (see protocol/echo), after greeting
// with the peer status.
func echoHandler(_ context.Context, c *Conn) {
	io.WriteString(c, "status "+string(c.PeerStatus())+"\n")
	buf := make([]byte, 1024)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(append([]byte("Echo -- "), buf[:n]...)); err != nil {
			return
		}
	}
}

type testServer struct {
	addr string
	logs *testutil.Buffer
	done chan error
}

// startServer runs a Server on 127.0.0.1 until the test ends.
func startServer(t testing.TB, cfg ServerConfig, h func(context.Context, *Conn)) *testServer {
	t.Helper()
	if h == nil {
		h = echoHandler
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), logs: &testutil.Buffer{}, done: make(chan error, 1)}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Config: cfg, Handler: h}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return ts
}

// tlsServer starts an echo server presenting leaf.
func tlsServer(t testing.TB, leaf *testpki.Leaf) *testServer {
	t.Helper()
	return startServer(t, ServerConfig{GetCertificate: staticCert(leaf.TLS())}, nil)
}

func dialCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func contains(t testing.TB, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("got %q, want it to contain %q", got, want)
	}
}

func writeTestFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func loadCRLs(t testing.TB, path string) []*x509.RevocationList {
	t.Helper()
	crls, err := revocation.LoadCRLFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return crls
}
