package web

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/envoie"
)

// serveConns serves handler through a ConnServer, as a listener does: TLS
// connections accepted here and handed over with ServeConn, headerTimeout
// the listener's handshake timeout.
func serveConns(t *testing.T, handler http.Handler, headerTimeout time.Duration) *testServer {
	t.Helper()
	ca := testpki.NewRoot(t, testpki.CAOptions{CommonName: "web test root"})
	leaf := ca.Leaf(t, testpki.LeafOptions{})
	ln := tls.NewListener(testutil.Listen(t), &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
	cs := NewConnServer(handler, headerTimeout, nil)
	ctx, cancel := context.WithCancel(context.Background())
	wait := testutil.Serve(ln, func(c net.Conn) { cs.ServeConn(ctx, c) })
	t.Cleanup(func() {
		ln.Close()
		cancel()
		cs.Close()
		wait()
	})
	return &testServer{addr: ln.Addr().String(), ca: ca}
}

func (s *testServer) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestStalledDownloadDropped: an HTTPS client that stops reading a large
// file is dropped once the download has made no progress for the write
// timeout, with a line in the log; it does not get the rest by reading
// again later.
func TestStalledDownloadDropped(t *testing.T) {
	dir := t.TempDir()
	const size = 256 << 20
	if err := os.Truncate(writeTemp(t, dir, "big.bin"), size); err != nil {
		t.Fatal(err)
	}
	files, err := envoie.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	log, logs := testutil.Logger(t, slog.LevelInfo)
	srv := serveConns(t, &Assets{Files: files, Logger: log, WriteTimeout: 300 * time.Millisecond}, time.Second)

	c := srv.dial(t)
	if _, err := io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 64<<10); err != nil {
		t.Fatal(err)
	}
	// Stop reading; the server's writes stall once the socket buffers
	// are full.
	testutil.EventuallyContains(t, logs, `msg="asset download cut short"`, 10*time.Second)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n+64<<10 >= size {
		t.Fatalf("read %d more bytes of %d, error %v: the stalled download went on", n, size, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open after the write timeout: %v", err)
	}
}

// TestRequestBodyDeadline: a request that announces a body and never sends
// it is answered, then its connection is closed once the header timeout
// (headers and body together) has passed, instead of waiting for the body
// for ever.
func TestRequestBodyDeadline(t *testing.T) {
	root := assetTree(t)
	files, err := envoie.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	srv := serveConns(t, &Assets{Files: files}, 300*time.Millisecond)
	c := srv.dial(t)
	if _, err := io.WriteString(c, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "hello, world\n" {
		t.Fatalf("body %q", body)
	}
	_, err = br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection still open 10 s after a body that never came")
	}
	if err == nil {
		t.Fatal("the server sent more after the response")
	}
}

func writeTemp(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
