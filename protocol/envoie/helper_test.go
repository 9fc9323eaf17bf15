package envoie

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// testServer is a Server behind a real TLS listener on loopback, with its
// own accept loop (the production one lives in package secure).
type testServer struct {
	addr   string
	tlsCfg *tls.Config // client side
	caCert *x509.Certificate
	srv    *Server
	active atomic.Int64 // connections inside ServeConn
	aborts atomic.Int64 // Abort calls on modeAbort connections
	logs   *testutil.Buffer
	mode   connMode
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// connMode is what the test server hands to ServeConn.
type connMode int

const (
	modeTLS     connMode = iota // a *tls.Conn
	modeWrapped                 // a *tls.Conn hidden behind net.Conn, as secure.Conn does: no CloseWrite
	modePlain                   // the *net.TCPConn itself (TLS off)
	modeAbort                   // a *tls.Conn with an Abort method, as the listener's connections have
)

// abortConn is a TLS connection with the hard close the listener's
// connections offer: the socket under TLS closed without a close alert.
type abortConn struct {
	*tls.Conn
	aborts *atomic.Int64
}

func (c abortConn) Abort() error {
	c.aborts.Add(1)
	return c.NetConn().Close()
}

func startServer(tb testing.TB, files Files, tweak func(*Server)) *testServer {
	tb.Helper()
	return startServerMode(tb, files, tweak, modeTLS)
}

func startServerMode(tb testing.TB, files Files, tweak func(*Server), mode connMode) *testServer {
	tb.Helper()
	root := testpki.NewRoot(tb, testpki.CAOptions{})
	leaf := root.Leaf(tb, testpki.LeafOptions{})
	ln := testutil.Listen(tb)
	log, logs := testutil.Logger(tb, slog.LevelDebug)
	ts := &testServer{
		addr:   ln.Addr().String(),
		tlsCfg: &tls.Config{RootCAs: root.Pool(), ServerName: "localhost"},
		caCert: root.Cert,
		logs:   logs,
		mode:   mode,
	}
	ts.srv = &Server{Files: files, Logger: log}
	if tweak != nil {
		tweak(ts.srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	srvCfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ts.wg.Add(1)
			ts.active.Add(1)
			go func() {
				defer ts.wg.Done()
				defer ts.active.Add(-1)
				if ts.mode == modePlain {
					ts.srv.ServeConn(ctx, c)
					return
				}
				tc := tls.Server(c, srvCfg)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tc.HandshakeContext(ctx); err != nil {
					c.Close()
					return
				}
				_ = tc.SetDeadline(time.Time{})
				if ts.mode == modeAbort {
					ts.srv.ServeConn(ctx, abortConn{tc, &ts.aborts})
					return
				}
				if ts.mode == modeWrapped {
					// As secure.Conn does: a net.Conn without CloseWrite.
					ts.srv.ServeConn(ctx, struct{ net.Conn }{tc})
					return
				}
				ts.srv.ServeConn(ctx, tc)
			}()
		}
	}()
	tb.Cleanup(func() {
		cancel()
		ln.Close()
		ts.wg.Wait()
	})
	return ts
}

func (ts *testServer) dial(tb testing.TB) *tls.Conn {
	tb.Helper()
	if ts.mode == modePlain {
		tb.Fatal("dial on a plain server: use dialPlain")
	}
	d := &tls.Dialer{Config: ts.tlsCfg}
	c, err := d.DialContext(context.Background(), "tcp", ts.addr)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c.(*tls.Conn)
}

func (ts *testServer) dialPlain(tb testing.TB) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func (ts *testServer) client(tb testing.TB) *Client {
	if ts.mode == modePlain {
		return NewClient(ts.dialPlain(tb))
	}
	return NewClient(ts.dial(tb))
}

// waitTimeout bounds every wait for the server to reach a state.
const waitTimeout = 10 * time.Second

// writeFile writes data under dir, creating folders.
func writeFile(tb testing.TB, dir, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func openDir(tb testing.TB, path string) *Dir {
	tb.Helper()
	d, err := OpenDir(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// remoteErr asserts err is a *RemoteError with code and message.
func remoteErr(tb testing.TB, err error, code Code, msg string) {
	tb.Helper()
	var re *RemoteError
	if !errors.As(err, &re) {
		tb.Fatalf("got error %v, want a *RemoteError %s", err, code)
	}
	if re.Code != code || re.Message != msg {
		tb.Fatalf("got %s: %q\nwant %s: %q", re.Code, re.Message, code, msg)
	}
}

func (m connMode) String() string {
	return [...]string{"tls", "tls-without-closewrite", "plain", "tls-with-abort"}[m]
}
