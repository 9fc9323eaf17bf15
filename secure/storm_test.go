package secure

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
)

// raiseFileLimit lifts the soft limit on open descriptors to at least n
// (within the hard limit) for the rest of the test binary's life: a test
// that holds thousands of connections on both ends needs it on machines
// whose default soft limit is 1024.
func raiseFileLimit(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("open file limit: hard limit %d, the test needs %d", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
}

// TestHandshakeStorm starts 2,000 TLS clients at once against a Server
// whose connection limit is above 2,000: every handshake completes and every
// client reaches the handler, none is refused, whatever order the accept
// loop takes them in. The handshake timeout is raised to a minute: all the
// handshakes run at once and share the cores, so each one lasts about as
// long as all of them together, which under the race detector on a busy
// 2-core machine is more than the default 10 s; how fast they go is
// BenchmarkHandshakeConcurrent's business, not this test's.
func TestHandshakeStorm(t *testing.T) {
	const clients = 2000
	raiseFileLimit(t, 2*clients+256)
	root := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := root.Leaf(t, testpki.LeafOptions{})
	var served atomic.Int64
	ts := startServer(t, ServerConfig{
		GetCertificate:     staticCert(leaf.TLS()),
		MaxConns:           clients + 100,
		MaxConnsPerAddress: clients + 100,
		HandshakeTimeout:   time.Minute,
		Logger:             slog.New(slog.DiscardHandler),
	}, func(_ context.Context, c *Conn) {
		served.Add(1)
		c.Write([]byte{'!'})
		io.Copy(io.Discard, c) // until the client closes
	})
	// X25519 alone keeps the test quick under the race detector; the key
	// exchange is not what is tested.
	cfg := &tls.Config{RootCAs: root.Pool(), ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.X25519}}
	start := make(chan struct{})
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	conns := make([]net.Conn, clients)
	for i := range clients {
		wg.Go(func() {
			<-start
			d := &net.Dialer{Timeout: time.Minute}
			c, err := tls.DialWithDialer(d, "tcp", ts.addr, cfg)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			conns[i] = c
			c.SetReadDeadline(time.Now().Add(time.Minute))
			var b [1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				errs <- fmt.Errorf("client %d: handler's byte: %w", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n < 5 {
			t.Error(err)
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d of %d clients failed", n, clients)
	}
	if got := served.Load(); got != clients {
		t.Fatalf("handler ran %d times, want %d", got, clients)
	}
	for _, c := range conns {
		c.Close()
	}
}

// BenchmarkHandshakeConcurrent runs full TLS 1.3 handshakes (ECDSA P-256,
// no resumption) from 64 concurrent clients in this process against a
// Server that logs at info level, as passerelle serve does: the figure to
// profile for what serialises handshakes across cores.
//
//	go test -run '^$' -bench HandshakeConcurrent -cpu 1,2 ./secure
//	go test -run '^$' -bench HandshakeConcurrent -cpu 2 -cpuprofile cpu.out -mutexprofile mutex.out -blockprofile block.out ./secure
func BenchmarkHandshakeConcurrent(b *testing.B) {
	raiseFileLimit(b, 4096)
	root := testpki.NewRoot(b, testpki.CAOptions{})
	leaf := root.Leaf(b, testpki.LeafOptions{})
	ts := startServer(b, ServerConfig{
		GetCertificate:     staticCert(leaf.TLS()),
		MaxConnsPerAddress: 1000,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, func(_ context.Context, c *Conn) { c.Write([]byte{'!'}) })
	cfg := &tls.Config{RootCAs: root.Pool(), ServerName: "localhost"}
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // 64 clients in all
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var buf [1]byte
		for pb.Next() {
			c, err := tls.Dial("tcp", ts.addr, cfg)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(c, buf[:]); err != nil {
				b.Error(err)
			}
			c.Close()
		}
	})
}
